{{/*
Shared pieces of the tsmesh templates: the namespace, names, labels, the image and the
restricted security settings every control-plane pod uses.
*/}}

{{/* The control-plane namespace; refuses a release installed anywhere else. */}}
{{- define "tsmesh.namespace" -}}
{{- $ns := .Values.global.controlPlaneNamespace -}}
{{- if ne $ns .Release.Namespace -}}
{{- fail (printf "global.controlPlaneNamespace is %q but the release is being installed in namespace %q: install with --namespace %s, or set global.controlPlaneNamespace=%s" $ns .Release.Namespace $ns .Release.Namespace) -}}
{{- end -}}
{{- $ns -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "tsmesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: tsmesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tsmesh
{{- end -}}

{{/* Selector labels of one component: (list $ "control"). */}}
{{- define "tsmesh.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: tsmesh
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* All labels of one component's objects: (list $ "control"). */}}
{{- define "tsmesh.componentLabels" -}}
{{ include "tsmesh.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image reference, tag defaulting to the chart's appVersion. */}}
{{- define "tsmesh.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Pod-level security context: restricted Pod Security Standard, uid/gid 65532 as in the image. */}}
{{- define "tsmesh.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: restricted, nothing writable but the mounted volumes. */}}
{{- define "tsmesh.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Scheduling of one component's pods: (list $ "control" .Values.control). The component's
affinity when set, else a preferred anti-affinity that spreads its replicas over nodes.
*/}}
{{- define "tsmesh.scheduling" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $values := index . 2 -}}
affinity:
{{- if $values.affinity }}
  {{- toYaml $values.affinity | nindent 2 }}
{{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "tsmesh.selectorLabels" (list $root $name) | nindent 14 }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.global.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget for one component: (list $ "control" .Values.control). */}}
{{- define "tsmesh.pdb" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $values := index . 2 -}}
{{- if $values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: tsmesh-{{ $name }}
  namespace: {{ include "tsmesh.namespace" $root }}
  labels:
    {{- include "tsmesh.componentLabels" (list $root $name) | nindent 4 }}
spec:
  maxUnavailable: {{ $values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "tsmesh.selectorLabels" (list $root $name) | nindent 6 }}
{{- end }}
{{- end -}}

{{/*
The sidecars' tracing as YAML {provider, endpoint, sampleRate}, all strings; provider "" means
the injector gets no tracing flags (the sidecars' default: off). proxy.tracing.provider "" follows
zipkin.enabled; the chart's Zipkin is the endpoint whenever zipkin is the provider and none is
given. An endpoint is dropped with provider none (the injector would refuse it).
*/}}
{{- define "tsmesh.proxyTracing" -}}
{{- $tracing := .Values.proxy.tracing -}}
{{- $provider := $tracing.provider -}}
{{- $endpoint := $tracing.endpoint -}}
{{- if and (not $provider) .Values.zipkin.enabled -}}
{{- $provider = "zipkin" -}}
{{- end -}}
{{- if and (eq $provider "zipkin") (not $endpoint) .Values.zipkin.enabled -}}
{{- $endpoint = printf "http://zipkin.%s:9411/api/v2/spans" (include "tsmesh.namespace" .) -}}
{{- end -}}
{{- if or (not $provider) (eq $provider "none") -}}
{{- $endpoint = "" -}}
{{- end -}}
provider: {{ $provider | quote }}
endpoint: {{ $endpoint | quote }}
sampleRate: {{ toString $tracing.sampleRate | quote }}
{{- end -}}
