// TSM0301, TSM0302, TSM0402: STRICT mTLS and the sidecars it needs; the injection label's values.
import { describe, expect, it } from '@jest/globals';
import { brief, findings, namespace, peerAuthentication, pod, route, service } from '../testing.js';

const INJECTED = { 'tsmesh-injection': 'enabled' };
const meshStrict = peerAuthentication('tsmesh-system', 'default', 'STRICT');

describe('injection analyzer', () => {
  describe('TSM0301 (uninjected callers of STRICT workloads)', () => {
    it('reports each namespace with pods that have no sidecar while the mesh is STRICT, naming the pods', () => {
      const found = findings([
        meshStrict,
        namespace('shop', INJECTED),
        pod('shop', 'web-0', { app: 'web' }, { meshed: true }),
        namespace('legacy'),
        pod('legacy', 'cron-0', { app: 'cron' }),
        pod('legacy', 'cron-1', { app: 'cron' }),
        // Never injected, not judged.
        namespace('kube-system'),
        pod('kube-system', 'coredns-0', { app: 'dns' }),
      ]);
      expect(brief(found)).toEqual(['TSM0301 Namespace legacy']);
      expect(found[0]?.text).toBe(
        'pods cron-0, cron-1 have no sidecar (the namespace is not labelled tsmesh-injection=enabled); PeerAuthentication tsmesh-system/default makes the mesh STRICT, so their calls to meshed workloads are refused unless a namespace or workload policy relaxes it',
      );
    });

    it('counts a pod that opted out in an injected namespace as a caller without a sidecar', () => {
      const found = findings([meshStrict, namespace('shop', INJECTED), pod('shop', 'batch-0', { app: 'batch' }, { annotations: { 'tsmesh.io/inject': 'false' } })]);
      expect(brief(found)).toEqual(['TSM0301 Namespace shop']);
    });

    it('without Pods, judges a namespace by its injection label', () => {
      expect(brief(findings([meshStrict, namespace('shop', INJECTED), namespace('legacy')]))).toEqual(['TSM0301 Namespace legacy']);
    });

    it('says nothing when the mesh is not STRICT, or when nothing shows how namespaces are injected', () => {
      expect(findings([peerAuthentication('tsmesh-system', 'default', 'PERMISSIVE'), namespace('legacy'), pod('legacy', 'cron-0', { app: 'cron' })])).toEqual([]);
      expect(findings([meshStrict, service('legacy', 'cron', [80])])).toEqual([]);
    });

    it('reports a consumer route of an uninjected namespace to a Service that is STRICT', () => {
      const objects = [
        namespace('payments', INJECTED),
        peerAuthentication('payments', 'strict', 'STRICT'),
        service('payments', 'api', [80]),
        pod('payments', 'api-0', { app: 'api' }, { meshed: true }),
        namespace('legacy'),
        pod('legacy', 'cron-0', { app: 'cron' }),
        route('HTTPRoute', 'legacy', 'to-payments', [{ kind: 'Service', group: '', name: 'api', namespace: 'payments' }], [{ name: 'api', namespace: 'payments', port: 80 }]),
      ];
      const found = findings(objects).filter((m) => m.code === 'TSM0301');
      expect(brief(found)).toEqual(['TSM0301 HTTPRoute legacy/to-payments']);
      expect(found[0]?.text).toBe(
        'says namespace legacy calls Service payments/api, which is STRICT (PeerAuthentication payments/strict), but in legacy pods cron-0 have no sidecar (the namespace is not labelled tsmesh-injection=enabled): those calls are plaintext and refused, and this route does not apply to them',
      );
      // The same route from an injected namespace is fine.
      const injected = objects.map((o) => (o.kind === 'Pod' && o.metadata.name === 'cron-0' ? pod('legacy', 'cron-0', { app: 'cron' }, { meshed: true }) : o));
      expect(findings(injected).filter((m) => m.code === 'TSM0301')).toEqual([]);
    });

    it('uses the Service\'s own workloads: a workload policy relaxing them means no finding', () => {
      const found = findings([
        namespace('payments', INJECTED),
        peerAuthentication('payments', 'strict', 'STRICT'),
        peerAuthentication('payments', 'api-open', 'PERMISSIVE', { app: 'api' }),
        service('payments', 'api', [80]),
        pod('payments', 'api-0', { app: 'api' }, { meshed: true }),
        namespace('legacy'),
        pod('legacy', 'cron-0', { app: 'cron' }),
        route('HTTPRoute', 'legacy', 'to-payments', [{ kind: 'Service', group: '', name: 'api', namespace: 'payments' }], [{ name: 'api', namespace: 'payments', port: 80 }]),
      ]);
      expect(found.filter((m) => m.code === 'TSM0301')).toEqual([]);
    });
  });

  describe('TSM0302 (STRICT without sidecars)', () => {
    it('reports a namespace-wide STRICT policy over pods none of which has a sidecar', () => {
      const found = findings([namespace('legacy'), peerAuthentication('legacy', 'strict', 'STRICT'), pod('legacy', 'cron-0', { app: 'cron' })]);
      expect(brief(found)).toEqual(['TSM0302 PeerAuthentication legacy/strict']);
      expect(found[0]?.text).toBe('is STRICT, but the pods it applies to (cron-0) have no sidecar: nothing enforces it and they accept plaintext from anyone');
    });

    it('reports a workload STRICT policy whose selected pods have no sidecar, not when one has', () => {
      const objects = [peerAuthentication('shop', 'web', 'STRICT', { app: 'web' }), pod('shop', 'web-0', { app: 'web' }), pod('shop', 'api-0', { app: 'api' }, { meshed: true })];
      expect(brief(findings(objects))).toEqual(['TSM0302 PeerAuthentication shop/web']);
      expect(findings([...objects, pod('shop', 'web-1', { app: 'web' }, { meshed: true })])).toEqual([]);
    });

    it('without Pods, reports a namespace-wide STRICT policy in a namespace not labelled for injection', () => {
      expect(brief(findings([namespace('legacy'), peerAuthentication('legacy', 'strict', 'STRICT')]))).toEqual(['TSM0302 PeerAuthentication legacy/strict']);
      expect(findings([namespace('shop', INJECTED), peerAuthentication('shop', 'strict', 'STRICT')])).toEqual([]);
    });
  });

  it('TSM0402: reports an injection label that is neither enabled nor disabled', () => {
    const found = findings([namespace('a', { 'tsmesh-injection': 'true' }), namespace('b', { 'tsmesh-injection': 'disabled' }), namespace('c', INJECTED)]);
    expect(brief(found)).toEqual(['TSM0402 Namespace a']);
    expect(found[0]?.text).toBe('has label tsmesh-injection=true, which is neither enabled nor disabled: the injector treats it as disabled');
  });
});
