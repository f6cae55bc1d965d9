// TSM0401: tsmesh.io/ annotations tsmesh does not read.
import { describe, expect, it } from '@jest/globals';
import { ANNOTATIONS } from '@tsmesh/injector';
import { brief, findings, namespace, pod, service } from '../testing.js';
import { annotationProblem, editDistance } from './annotations.js';

describe('annotation analyzer', () => {
  it('TSM0401: reports an unknown tsmesh.io/ annotation on a pod, with the known one it is closest to', () => {
    const found = findings([pod('shop', 'web-0', { app: 'web' }, { annotations: { 'tsmesh.io/exclude-outbound-port': '5432', 'example.com/other': 'x' } })]);
    expect(brief(found)).toEqual(['TSM0401 Pod shop/web-0']);
    expect(found[0]?.text).toBe('has annotation tsmesh.io/exclude-outbound-port, which tsmesh does not know (did you mean tsmesh.io/exclude-outbound-ports?): it does nothing');
  });

  it("accepts every annotation of the injector's list on pods, and the load balancer on Services", () => {
    const every = Object.fromEntries(Object.values(ANNOTATIONS).map((name) => [name, 'x']));
    expect(findings([pod('shop', 'web-0', { app: 'web' }, { annotations: every }), service('shop', 'web', [80], { app: 'web' }, { 'tsmesh.io/load-balancer': 'random' })])).toEqual([]);
  });

  it('TSM0401: reports a pod annotation put on a Namespace or a Service, and the inject annotation on a Namespace', () => {
    const found = findings([namespace('shop', {}, { 'tsmesh.io/inject': 'true', 'tsmesh.io/proxy-cpu': '100m' }), service('shop', 'web', [80], { app: 'web' }, { 'tsmesh.io/opaque-ports': '80' })]);
    expect(brief(found)).toEqual(['TSM0401 Namespace shop', 'TSM0401 Namespace shop', 'TSM0401 Service shop/web']);
    expect(found[0]?.text).toBe('has annotation tsmesh.io/inject, which tsmesh reads on pods only: on a Namespace it does nothing (a namespace turns injection on with the label tsmesh-injection=enabled)');
    expect(found[2]?.text).toBe('has annotation tsmesh.io/opaque-ports, which tsmesh reads on pods only: on a Service it does nothing (set it on the pod template)');
  });

  it('TSM0401: reports the load-balancer annotation on a pod', () => {
    expect(annotationProblem('Pod', 'tsmesh.io/load-balancer')).toBe('has annotation tsmesh.io/load-balancer, which tsmesh reads on Services only: on a Pod it does nothing');
    expect(annotationProblem('Pod', 'other.io/whatever')).toBeUndefined();
    expect(annotationProblem('Namespace', 'tsmesh.io/anything')).toBe('has annotation tsmesh.io/anything, which tsmesh does not know: it does nothing');
  });

  it('measures edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });
});
