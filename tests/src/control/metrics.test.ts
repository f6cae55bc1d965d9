// The control plane's /metrics on its admin server, scraped while real sidecars (the proxy's
// ControlPlaneSource, over HTTP/2 and mutual TLS with certificates of a real tsmesh CA) connect,
// acknowledge, refuse and disconnect.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { CONTROL_METRIC_NAMES, controlPlaneConfig, startControlPlane, type RunningControlPlane } from '@tsmesh/control';
import { ControlPlaneSource } from '@tsmesh/proxy';
import { CONTROL_ID, ManualProvider, TestCa, clientContext, meshSnapshot, silent, withOthers, type IssuedPem } from './mesh-fixture.js';

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(20);
  }
}

/** The value of one sample of a scrape (labels in any order), or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('control plane /metrics', () => {
  let ca: TestCa;
  let web: IssuedPem;
  let files: { cert: string; key: string; bundle: string };
  let plane: RunningControlPlane | undefined;
  let sources: ControlPlaneSource[] = [];

  beforeAll(async () => {
    setLogLevel('silent');
    ca = await TestCa.start();
    web = await ca.issue('shop', 'web');
    files = ca.writeServingFiles('control', await ca.issue('tsmesh-system', 'tsmesh-control'));
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await plane?.close();
    sources = [];
    plane = undefined;
  });

  afterAll(async () => {
    await ca.close();
  });

  async function scrape(): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${plane?.debugAddress?.port ?? 0}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text();
  }

  function sidecar(maxMessageBytes?: number): ControlPlaneSource {
    const source = new ControlPlaneSource({
      controlAddr: `127.0.0.1:${plane?.address.port ?? 0}`,
      tlsSource: { clientContext: () => clientContext(web) },
      serverIdentity: CONTROL_ID,
      podName: 'web-0',
      backoff: { baseMs: 100, maxMs: 400 },
      startTimeoutMs: 5000,
      log: silent,
      ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
    });
    sources.push(source);
    return source;
  }

  async function start(provider: ManualProvider): Promise<void> {
    const argv = ['--tls-cert', files.cert, '--tls-key', files.key, '--trust-bundle', files.bundle, '--listen', '127.0.0.1:0', '--debug-listen', '127.0.0.1:0', '--debounce', '10ms'];
    plane = await startControlPlane(controlPlaneConfig(argv, {}), { log: silent, tlsReloadMs: 0, provider });
  }

  it('counts a sidecar connecting, its push and ACK, a change pushed, and the sidecar leaving', async () => {
    const first = meshSnapshot({ webEndpoints: ['10.0.0.1'] });
    const provider = new ManualProvider(first);
    await start(provider);
    const before = await scrape();
    expect(sample(before, 'tsmesh_build_info', { component: 'control' })).toBe(1);
    expect(sample(before, CONTROL_METRIC_NAMES.connectedProxies)).toBe(0);
    expect(sample(before, CONTROL_METRIC_NAMES.pushes, { trigger: 'connect' })).toBeUndefined();
    expect(sample(before, CONTROL_METRIC_NAMES.snapshotInfo, { version: first.version })).toBe(1);
    expect(sample(before, CONTROL_METRIC_NAMES.snapshots)).toBe(1);

    const shop = sidecar();
    const result = await shop.start();
    expect(result.ok).toBe(true);
    const connected = await eventually(async () => {
      const text = await scrape();
      return sample(text, CONTROL_METRIC_NAMES.acks) === 1 ? text : undefined;
    }, 'the ACK counted');
    expect(sample(connected, CONTROL_METRIC_NAMES.connectedProxies)).toBe(1);
    expect(sample(connected, CONTROL_METRIC_NAMES.pushes, { trigger: 'connect' })).toBe(1);
    expect(sample(connected, `${CONTROL_METRIC_NAMES.pushDuration}_count`, { trigger: 'connect' })).toBe(1);

    const second = meshSnapshot({ webEndpoints: ['10.0.0.1', '10.0.0.2'] });
    provider.publish(second);
    const changed = await eventually(async () => {
      const text = await scrape();
      return sample(text, CONTROL_METRIC_NAMES.acks) === 2 ? text : undefined;
    }, 'the second ACK');
    expect(sample(changed, CONTROL_METRIC_NAMES.pushes, { trigger: 'change' })).toBe(1);
    expect(sample(changed, `${CONTROL_METRIC_NAMES.pushDuration}_count`, { trigger: 'change' })).toBe(1);
    // The change waited out the debounce (10 ms) before it was pushed.
    expect(sample(changed, `${CONTROL_METRIC_NAMES.pushDuration}_bucket`, { trigger: 'change', le: '0.001' })).toBe(0);
    expect(sample(changed, CONTROL_METRIC_NAMES.snapshotInfo, { version: second.version })).toBe(1);
    expect(sample(changed, CONTROL_METRIC_NAMES.snapshotInfo, { version: first.version })).toBeUndefined();
    expect(sample(changed, CONTROL_METRIC_NAMES.snapshots)).toBe(2);

    await shop.close();
    await eventually(async () => sample(await scrape(), CONTROL_METRIC_NAMES.connectedProxies) === 0, 'the sidecar gone');
  });

  it('counts NACKs by kind: an invalid object, a snapshot over the sidecar size limit', async () => {
    const good = meshSnapshot({ webEndpoints: ['10.0.0.1'] });
    const provider = new ManualProvider(good);
    await start(provider);
    await sidecar().start();
    const unknown = { apiVersion: 'gateway.networking.k8s.io/v2', kind: 'HTTPRoute', metadata: { name: 'future', namespace: 'shop' }, spec: {} };
    provider.publish(withOthers(good, [unknown], 'bad-1'));
    await eventually(async () => sample(await scrape(), CONTROL_METRIC_NAMES.nacks, { kind: 'invalid' }) === 1, 'the invalid NACK');

    const small = sidecar(64);
    void small.start().catch(() => undefined);
    const text = await eventually(async () => {
      const scraped = await scrape();
      return (sample(scraped, CONTROL_METRIC_NAMES.nacks, { kind: 'too_large' }) ?? 0) >= 1 ? scraped : undefined;
    }, 'the too-large NACK');
    expect(sample(text, CONTROL_METRIC_NAMES.nacks, { kind: 'invalid' })).toBe(1);
  });
});
