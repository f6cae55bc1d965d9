import { TsmeshError } from '@tsmesh/common';
import { injectConfig, injectorConfig } from './config.js';

const tls = ['--tls-cert', '/tls/tls.crt', '--tls-key', '/tls/tls.key'];

function badFlag(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TsmeshError);
    expect((error as TsmeshError).code).toBe('TSMESH_ERR_BAD_FLAG');
    return (error as TsmeshError).message;
  }
  throw new Error('expected a bad flag');
}

describe('injectorConfig', () => {
  it('has defaults for everything but the TLS files', () => {
    const config = injectorConfig(tls, {});
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 15017 });
    expect(config.tlsCertFile).toBe('/tls/tls.crt');
    expect(config.kubeconfig).toBeUndefined();
    expect(config.logLevel).toBe('info');
    expect(config.settings).toEqual({
      image: 'ghcr.io/tsmesh/tsmesh:0.1.0',
      nativeSidecars: 'auto',
      proxyLogLevel: 'info',
      controlPlaneNamespace: 'tsmesh-system',
      caAddress: 'tsmesh-ca.tsmesh-system.svc:15012',
      controlAddress: 'tsmesh-control.tsmesh-system.svc:15010',
      proxyResources: { cpu: '100m', memory: '128Mi', memoryLimit: '1Gi' },
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.settings)).toBe(true);
  });

  it('requires the TLS files', () => {
    expect(badFlag(() => injectorConfig([], {}))).toBe(
      '--tls-cert and --tls-key are required: the API server only calls webhooks over HTTPS (or --manage-webhook-cert NAME to make the certificate here)',
    );
  });

  it('reads every flag', () => {
    const config = injectorConfig(
      [
        ...tls,
        '--listen', '127.0.0.1:9443',
        '--kubeconfig', '/k/config',
        '--log-level', 'debug',
        '--image', 'registry.test/tsmesh:2',
        '--image-pull-policy', 'Always',
        '--control-plane-namespace', 'mesh',
        '--native-sidecars', 'false',
        '--kubernetes-version', '1.31',
        '--proxy-cpu', '50m',
        '--proxy-memory', '64Mi',
        '--proxy-cpu-limit', '1',
        '--proxy-memory-limit', '256Mi',
        '--proxy-log-level', 'warn',
      ],
      {},
    );
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9443 });
    expect(config.kubeconfig).toBe('/k/config');
    expect(config.logLevel).toBe('debug');
    expect(config.settings).toEqual({
      image: 'registry.test/tsmesh:2',
      imagePullPolicy: 'Always',
      nativeSidecars: false,
      kubernetesVersion: '1.31',
      proxyLogLevel: 'warn',
      controlPlaneNamespace: 'mesh',
      caAddress: 'tsmesh-ca.mesh.svc:15012',
      controlAddress: 'tsmesh-control.mesh.svc:15010',
      proxyResources: { cpu: '50m', memory: '64Mi', cpuLimit: '1', memoryLimit: '256Mi' },
    });
  });

  it('reads the environment when a flag is not given, the flag winning over it', () => {
    const env = {
      TSMESH_INJECTOR_TLS_CERT: '/env/crt',
      TSMESH_INJECTOR_TLS_KEY: '/env/key',
      TSMESH_INJECTOR_IMAGE: 'from-env:1',
      TSMESH_INJECTOR_CA_ADDR: 'ca.example:443',
      TSMESH_INJECTOR_LISTEN: '[::1]:8443',
      TSMESH_INJECTOR_NATIVE_SIDECARS: 'true',
    };
    const config = injectorConfig(['--image', 'from-flag:1'], env);
    expect(config.tlsCertFile).toBe('/env/crt');
    expect(config.listen).toEqual({ host: '::1', port: 8443 });
    expect(config.settings.image).toBe('from-flag:1');
    expect(config.settings.caAddress).toBe('ca.example:443');
    expect(config.settings.nativeSidecars).toBe(true);
  });

  it.each([
    [['--listen', 'nowhere'], '--listen: "nowhere" is not valid (expected [HOST]:PORT)'],
    [['--listen', ':70000'], '--listen: ":70000" is not valid (expected [HOST]:PORT)'],
    [['--log-level', 'chatty'], '--log-level: "chatty" is not valid (expected a pino level)'],
    [['--image', 'has space'], '--image: "has space" is not valid (expected an image reference)'],
    [['--image-pull-policy', 'Sometimes'], '--image-pull-policy: "Sometimes" is not valid (expected Always, IfNotPresent or Never)'],
    [['--control-plane-namespace', 'Mesh_System'], '--control-plane-namespace: "Mesh_System" is not valid (expected a namespace name)'],
    [['--ca-addr', 'ca'], '--ca-addr: "ca" is not valid (expected HOST:PORT)'],
    [['--control-addr', 'control:0'], '--control-addr: "control:0" is not valid (expected HOST:PORT)'],
    [['--native-sidecars', 'yes'], '--native-sidecars: "yes" is not valid (expected true, false or auto)'],
    [['--kubernetes-version', 'latest'], '--kubernetes-version: "latest" is not valid (expected a version such as 1.30 or v1.30.2)'],
    [['--proxy-memory', '1GB'], '--proxy-memory: "1GB" is not valid (expected a Kubernetes quantity such as 100m or 128Mi)'],
    [['--proxy-memory', '2Gi'], '--proxy-memory: "2Gi" is more than the limit "1Gi"'],
    [['--proxy-log-level', 'loud'], '--proxy-log-level: "loud" is not valid (expected a pino level)'],
    [['--proxy-tracing', 'jaeger'], '--proxy-tracing: "jaeger" is not valid (expected zipkin, otlp, none)'],
    [
      ['--proxy-tracing', 'zipkin', '--proxy-tracing-endpoint', 'zipkin:9411'],
      '--proxy-tracing-endpoint: "zipkin:9411" is not valid (expected an http(s) URL such as http://zipkin.tsmesh-system:9411/api/v2/spans)',
    ],
    [
      ['--proxy-tracing', 'otlp', '--proxy-tracing-endpoint', 'grpc://collector:4317'],
      '--proxy-tracing-endpoint: "grpc://collector:4317" is not valid (expected an http(s) URL such as http://zipkin.tsmesh-system:9411/api/v2/spans)',
    ],
    [['--proxy-tracing', 'zipkin', '--proxy-tracing-sample-rate', '1.5'], '--proxy-tracing-sample-rate: "1.5" is not valid (expected a number from 0 to 1)'],
    [['--proxy-tracing', 'zipkin', '--proxy-tracing-sample-rate=-0.1'], '--proxy-tracing-sample-rate: "-0.1" is not valid (expected a number from 0 to 1)'],
    [['--proxy-tracing', 'zipkin', '--proxy-tracing-sample-rate', 'half'], '--proxy-tracing-sample-rate: "half" is not valid (expected a number from 0 to 1)'],
    [['--proxy-tracing-endpoint', 'http://zipkin:9411'], '--proxy-tracing-endpoint needs --proxy-tracing zipkin or otlp'],
    [['--proxy-tracing', 'none', '--proxy-tracing-endpoint', 'http://zipkin:9411'], '--proxy-tracing-endpoint needs --proxy-tracing zipkin or otlp (it is none)'],
    [['--proxy-tracing-sample-rate', '0.5'], '--proxy-tracing-sample-rate needs --proxy-tracing'],
    [['--proxy-access-log', 'yes'], '--proxy-access-log: "yes" is not valid (expected on or off)'],
    [['--trust-domain', 'Example.org'], '--trust-domain: "Example.org" is not valid (expected a SPIFFE trust domain: lowercase letters, digits, ".", "-" and "_")'],
  ])('refuses %j', (flags, message) => {
    expect(badFlag(() => injectorConfig([...tls, ...flags], {}))).toBe(message);
  });

  it('reads the sidecars\' tracing and trust domain from flags and from the TSMESH_INJECTOR_* variables the chart sets', () => {
    const fromFlags = injectorConfig(
      [...tls, '--proxy-tracing', 'Zipkin', '--proxy-tracing-endpoint', 'http://zipkin.mesh:9411', '--proxy-tracing-sample-rate', '0.05', '--trust-domain', 'example.org'],
      {},
    );
    expect(fromFlags.settings.proxyTracing).toEqual({ provider: 'zipkin', endpoint: 'http://zipkin.mesh:9411', sampleRate: 0.05 });
    expect(fromFlags.settings.trustDomain).toBe('example.org');
    const fromEnv = injectorConfig(tls, {
      TSMESH_INJECTOR_PROXY_TRACING: 'otlp',
      TSMESH_INJECTOR_PROXY_TRACING_ENDPOINT: 'https://otel.example:4318/v1/traces',
      TSMESH_INJECTOR_PROXY_TRACING_SAMPLE_RATE: '1',
      TSMESH_INJECTOR_TRUST_DOMAIN: 'prod.example',
    });
    expect(fromEnv.settings.proxyTracing).toEqual({ provider: 'otlp', endpoint: 'https://otel.example:4318/v1/traces', sampleRate: 1 });
    expect(fromEnv.settings.trustDomain).toBe('prod.example');
    expect(Object.isFrozen(fromEnv.settings.proxyTracing)).toBe(true);
    expect(injectorConfig([...tls, '--proxy-tracing', 'none'], {}).settings.proxyTracing).toEqual({ provider: 'none' });
  });

  it('reads the sidecars\' access-log switch from the flag or TSMESH_INJECTOR_PROXY_ACCESS_LOG, and leaves it unset otherwise', () => {
    expect(injectorConfig([...tls, '--proxy-access-log', 'On'], {}).settings.proxyAccessLog).toBe(true);
    expect(injectorConfig(tls, { TSMESH_INJECTOR_PROXY_ACCESS_LOG: 'off' }).settings.proxyAccessLog).toBe(false);
    expect(injectorConfig(tls, {}).settings.proxyAccessLog).toBeUndefined();
  });

  it('refuses unknown flags and stray arguments', () => {
    expect(badFlag(() => injectorConfig([...tls, '--colour'], {}))).toMatch(/--colour/);
    expect(badFlag(() => injectorConfig([...tls, 'extra'], {}))).toMatch(/extra/);
  });
});

describe('injectorConfig with a self-managed certificate', () => {
  it('needs no TLS files and names the Service, namespace and CA Secret (defaults from the control-plane namespace)', () => {
    const config = injectorConfig(['--manage-webhook-cert', 'tsmesh-sidecar-injector-mesh', '--control-plane-namespace', 'mesh'], {});
    expect(config.tlsCertFile).toBeUndefined();
    expect(config.managedCert).toEqual({ webhookConfiguration: 'tsmesh-sidecar-injector-mesh', service: 'tsmesh-injector', namespace: 'mesh', caSecret: 'tsmesh-injector-ca' });
    expect(Object.isFrozen(config.managedCert)).toBe(true);
  });

  it('reads its flags from the environment too', () => {
    const config = injectorConfig([], {
      TSMESH_INJECTOR_MANAGE_WEBHOOK_CERT: 'hook',
      TSMESH_INJECTOR_WEBHOOK_SERVICE: 'inj',
      TSMESH_INJECTOR_WEBHOOK_NAMESPACE: 'sys',
      TSMESH_INJECTOR_WEBHOOK_CA_SECRET: 'inj-ca',
    });
    expect(config.managedCert).toEqual({ webhookConfiguration: 'hook', service: 'inj', namespace: 'sys', caSecret: 'inj-ca' });
  });

  it('refuses it together with TLS files, its flags without it, and bad names', () => {
    expect(badFlag(() => injectorConfig(['--manage-webhook-cert', 'hook', ...tls], {}))).toMatch(/exclude each other/);
    expect(badFlag(() => injectorConfig([...tls, '--webhook-ca-secret', 'x'], {}))).toBe('--webhook-ca-secret needs --manage-webhook-cert');
    expect(badFlag(() => injectorConfig(['--manage-webhook-cert', 'Hook!'], {}))).toMatch(/^--manage-webhook-cert: "Hook!" is not valid/);
    expect(badFlag(() => injectorConfig(['--manage-webhook-cert', 'hook', '--webhook-service', 'a.b'], {}))).toMatch(/^--webhook-service/);
  });
});

describe('injectConfig', () => {
  it('needs -f and takes the injection flags, not the environment', () => {
    const config = injectConfig(['-f', 'app.yaml', '--image', 'i:1', '--native-sidecars', 'true']);
    expect(config.file).toBe('app.yaml');
    expect(config.settings.image).toBe('i:1');
    expect(config.settings.nativeSidecars).toBe(true);
    expect(injectConfig(['--filename=-']).file).toBe('-');
    const traced = injectConfig(['-f', 'app.yaml', '--proxy-tracing', 'zipkin', '--trust-domain', 'example.org']);
    expect(traced.settings.proxyTracing).toEqual({ provider: 'zipkin' });
    expect(traced.settings.trustDomain).toBe('example.org');
  });

  it('refuses a missing -f and the webhook\'s own flags', () => {
    expect(badFlag(() => injectConfig([]))).toBe('-f FILE is required ("-" reads standard input)');
    expect(badFlag(() => injectConfig(['-f', 'x', '--tls-cert', 'c']))).toMatch(/--tls-cert/);
  });
});
