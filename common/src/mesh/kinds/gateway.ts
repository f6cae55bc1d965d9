// GatewayClass, Gateway (gateway.networking.k8s.io/v1) and ReferenceGrant (v1beta1): the edge of the
// mesh as `tsmesh gateway` serves it. Checked field by field here; attaching routes to listeners is
// the routing stage's (common/src/routing/gateway.ts).
import { describeValue, type FieldChecker } from '../fields.js';
import type { KindDefinition } from './kind.js';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const LISTENER_PROTOCOLS = ['HTTP', 'HTTPS', 'TLS', 'TCP', 'UDP'] as const;
export type ListenerProtocol = (typeof LISTENER_PROTOCOLS)[number];
export const TLS_MODES = ['Terminate', 'Passthrough'] as const;
export const FROM_NAMESPACES = ['Same', 'All', 'Selector'] as const;
const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

/** A Gateway API hostname: a precise RFC 1123 name, or one with a leading `*.` wildcard label; no IPs. */
const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isGatewayHostname(value: string): boolean {
  return value.length <= 253 && HOSTNAME.test(value) && !/^[0-9.]+$/.test(value);
}

export interface MeshGatewayClass {
  readonly name: string;
  readonly controllerName: string;
}

/** A reference to an object (Secret, Service, a route kind); group '' is core. */
export interface ObjectRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  /** undefined: the referring object's namespace. */
  readonly namespace: string | undefined;
}

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: (typeof SELECTOR_OPERATORS)[number];
  readonly values: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: readonly LabelSelectorRequirement[];
}

export interface AllowedRoutes {
  readonly from: (typeof FROM_NAMESPACES)[number];
  /** Set exactly when `from` is `Selector`. */
  readonly selector: LabelSelector | undefined;
  /** `kinds` as written; undefined: the protocol's defaults. */
  readonly kinds: readonly { readonly group: string; readonly kind: string }[] | undefined;
}

export interface MeshListener {
  readonly name: string;
  /** undefined: every hostname. */
  readonly hostname: string | undefined;
  readonly port: number;
  readonly protocol: ListenerProtocol;
  /** `tls` (HTTPS and TLS listeners). */
  readonly tls: { readonly mode: (typeof TLS_MODES)[number]; readonly certificateRefs: readonly ObjectRef[] } | undefined;
  readonly allowedRoutes: AllowedRoutes;
}

export interface MeshGateway {
  readonly namespace: string;
  readonly name: string;
  readonly gatewayClassName: string;
  readonly listeners: readonly MeshListener[];
}

export interface MeshReferenceGrant {
  readonly namespace: string;
  readonly name: string;
  readonly from: readonly { readonly group: string; readonly kind: string; readonly namespace: string }[];
  /** `name` undefined: every object of that kind in the grant's namespace. */
  readonly to: readonly { readonly group: string; readonly kind: string; readonly name: string | undefined }[];
}

export const gatewayClassKind: KindDefinition<MeshGatewayClass> = {
  apiVersion: `${GATEWAY_GROUP}/v1`,
  namespaced: false,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec', true) ?? {};
    const controllerName = check.string(spec['controllerName'], 'spec.controllerName', true) ?? '';
    return Object.freeze({ name: meta.name, controllerName });
  },
};

export const gatewayKind: KindDefinition<MeshGateway> = {
  apiVersion: `${GATEWAY_GROUP}/v1`,
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec', true) ?? {};
    const gatewayClassName = check.dnsSubdomain(spec['gatewayClassName'], 'spec.gatewayClassName', true) ?? '';
    const items = check.array(spec['listeners'], 'spec.listeners', true) ?? [];
    if (items.length === 0 || items.length > 64) check.fail('spec.listeners', `must hold 1 to 64 listeners, got ${items.length}`);
    const listeners: MeshListener[] = [];
    items.forEach((item, i) => {
      const listener = normalizeListener(check, item, `spec.listeners[${i}]`);
      if (listener === undefined) return;
      if (listeners.some((l) => l.name === listener.name)) check.fail(`spec.listeners[${i}].name`, `must be unique in the Gateway, ${describeValue(listener.name)} is repeated`);
      listeners.push(listener);
    });
    return Object.freeze({ namespace: meta.namespace, name: meta.name, gatewayClassName, listeners: Object.freeze(listeners) });
  },
};

function normalizeListener(check: FieldChecker, item: unknown, at: string): MeshListener | undefined {
  const raw = check.object(item, at, true);
  if (raw === undefined) return undefined;
  const name = check.dnsSubdomain(raw['name'], `${at}.name`, true);
  const port = check.port(raw['port'], `${at}.port`, true);
  const protocol = check.oneOf(raw['protocol'], `${at}.protocol`, LISTENER_PROTOCOLS, true);
  const hostname = hostnameOf(check, raw['hostname'], `${at}.hostname`);
  const tlsRaw = check.object(raw['tls'], `${at}.tls`);
  let tls: MeshListener['tls'];
  if (tlsRaw !== undefined) {
    const mode = check.oneOf(tlsRaw['mode'], `${at}.tls.mode`, TLS_MODES) ?? 'Terminate';
    const certificateRefs: ObjectRef[] = [];
    (check.array(tlsRaw['certificateRefs'], `${at}.tls.certificateRefs`) ?? []).forEach((ref, j) => {
      const parsed = objectRef(check, ref, `${at}.tls.certificateRefs[${j}]`, { group: '', kind: 'Secret' });
      if (parsed) certificateRefs.push(parsed);
    });
    tls = Object.freeze({ mode, certificateRefs: Object.freeze(certificateRefs) });
  }
  if (protocol === 'HTTPS' && (tls === undefined || tls.mode !== 'Terminate' || tls.certificateRefs.length === 0)) {
    check.fail(`${at}.tls`, 'an HTTPS listener needs tls.mode Terminate (the default) and at least one certificateRefs entry');
  }
  if (protocol === 'TLS' && tls === undefined) check.fail(`${at}.tls`, 'a TLS listener needs tls (mode Passthrough or Terminate)');
  if ((protocol === 'HTTP' || protocol === 'TCP' || protocol === 'UDP') && tls !== undefined) check.fail(`${at}.tls`, `must not be set on a ${protocol} listener`);
  const allowedRoutes = allowedRoutesOf(check, raw['allowedRoutes'], `${at}.allowedRoutes`);
  if (name === undefined || port === undefined || protocol === undefined) return undefined;
  return Object.freeze({ name, hostname, port, protocol, tls, allowedRoutes });
}

function hostnameOf(check: FieldChecker, value: unknown, at: string): string | undefined {
  const text = check.string(value, at);
  if (text === undefined) return undefined;
  if (!isGatewayHostname(text)) return check.fail(at, `must be a hostname (RFC 1123, optionally starting with "*."; no IP address), got ${describeValue(text)}`);
  return text;
}

function allowedRoutesOf(check: FieldChecker, value: unknown, at: string): AllowedRoutes {
  const raw = check.object(value, at) ?? {};
  const namespaces = check.object(raw['namespaces'], `${at}.namespaces`) ?? {};
  const from = check.oneOf(namespaces['from'], `${at}.namespaces.from`, FROM_NAMESPACES) ?? 'Same';
  let selector: LabelSelector | undefined;
  if (from === 'Selector') {
    const sel = check.object(namespaces['selector'], `${at}.namespaces.selector`, true);
    if (sel !== undefined) selector = labelSelector(check, sel, `${at}.namespaces.selector`);
  }
  let kinds: AllowedRoutes['kinds'];
  const rawKinds = check.array(raw['kinds'], `${at}.kinds`);
  if (rawKinds !== undefined) {
    kinds = rawKinds.flatMap((k, i) => {
      const entry = check.object(k, `${at}.kinds[${i}]`, true);
      const kind = check.string(entry?.['kind'], `${at}.kinds[${i}].kind`, true);
      const group = entry?.['group'] === undefined || entry['group'] === null ? GATEWAY_GROUP : check.string(entry['group'], `${at}.kinds[${i}].group`);
      return kind === undefined || group === undefined ? [] : [Object.freeze({ group, kind })];
    });
  }
  return Object.freeze({ from, selector, kinds });
}

function labelSelector(check: FieldChecker, raw: Record<string, unknown>, at: string): LabelSelector {
  const matchLabels = Object.freeze(check.stringMap(raw['matchLabels'], `${at}.matchLabels`));
  const matchExpressions: LabelSelectorRequirement[] = [];
  (check.array(raw['matchExpressions'], `${at}.matchExpressions`) ?? []).forEach((e, i) => {
    const p = `${at}.matchExpressions[${i}]`;
    const expr = check.object(e, p, true);
    const key = check.string(expr?.['key'], `${p}.key`, true);
    const operator = check.oneOf(expr?.['operator'], `${p}.operator`, SELECTOR_OPERATORS, true);
    const values = (check.array(expr?.['values'], `${p}.values`) ?? []).map((v, j) => check.string(v, `${p}.values[${j}]`, true) ?? '');
    if ((operator === 'In' || operator === 'NotIn') && values.length === 0) check.fail(`${p}.values`, `must not be empty with operator ${operator}`);
    if (key !== undefined && operator !== undefined) matchExpressions.push(Object.freeze({ key, operator, values: Object.freeze(values) }));
  });
  return Object.freeze({ matchLabels, matchExpressions: Object.freeze(matchExpressions) });
}

/** Whether `labels` satisfy a label selector (every matchLabels entry and every expression). */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels)) if (labels[key] !== value) return false;
  for (const expr of selector.matchExpressions) {
    const has = Object.hasOwn(labels, expr.key);
    const value = labels[expr.key];
    const ok =
      expr.operator === 'Exists'
        ? has
        : expr.operator === 'DoesNotExist'
          ? !has
          : expr.operator === 'In'
            ? has && expr.values.includes(value ?? '')
            : !has || !expr.values.includes(value ?? '');
    if (!ok) return false;
  }
  return true;
}

function objectRef(check: FieldChecker, value: unknown, at: string, defaults: { group: string; kind: string }): ObjectRef | undefined {
  const raw = check.object(value, at, true);
  if (raw === undefined) return undefined;
  const name = check.string(raw['name'], `${at}.name`, true);
  const namespace = raw['namespace'] === undefined || raw['namespace'] === null ? undefined : check.dnsLabel(raw['namespace'], `${at}.namespace`);
  const group = raw['group'] === undefined || raw['group'] === null || raw['group'] === 'core' ? defaults.group : check.string(raw['group'], `${at}.group`);
  const kind = raw['kind'] === undefined || raw['kind'] === null ? defaults.kind : check.string(raw['kind'], `${at}.kind`);
  if (name === undefined || group === undefined || kind === undefined) return undefined;
  return Object.freeze({ group, kind, name, namespace });
}

export const referenceGrantKind: KindDefinition<MeshReferenceGrant> = {
  apiVersion: `${GATEWAY_GROUP}/v1beta1`,
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const spec = check.object(raw['spec'], 'spec', true) ?? {};
    const from = (check.array(spec['from'], 'spec.from', true) ?? []).flatMap((f, i) => {
      const entry = check.object(f, `spec.from[${i}]`, true);
      const group = typeof entry?.['group'] === 'string' ? entry['group'] : check.string(entry?.['group'], `spec.from[${i}].group`, true);
      const kind = check.string(entry?.['kind'], `spec.from[${i}].kind`, true);
      const namespace = check.dnsLabel(entry?.['namespace'], `spec.from[${i}].namespace`, true);
      return group === undefined || kind === undefined || namespace === undefined ? [] : [Object.freeze({ group, kind, namespace })];
    });
    const to = (check.array(spec['to'], 'spec.to', true) ?? []).flatMap((t, i) => {
      const entry = check.object(t, `spec.to[${i}]`, true);
      const group = typeof entry?.['group'] === 'string' ? (entry['group'] === 'core' ? '' : entry['group']) : check.string(entry?.['group'], `spec.to[${i}].group`, true);
      const kind = check.string(entry?.['kind'], `spec.to[${i}].kind`, true);
      const name = check.string(entry?.['name'], `spec.to[${i}].name`);
      return group === undefined || kind === undefined ? [] : [Object.freeze({ group, kind, name })];
    });
    if (from.length === 0 && !check.problems.some((p) => p.path.startsWith('spec'))) check.fail('spec.from', 'must hold at least one entry');
    if (to.length === 0 && !check.problems.some((p) => p.path.startsWith('spec'))) check.fail('spec.to', 'must hold at least one entry');
    return Object.freeze({ namespace: meta.namespace, name: meta.name, from: Object.freeze(from), to: Object.freeze(to) });
  },
};
