import { describe, expect, it } from '@jest/globals';
import type { RouteCondition, RouteStatus } from '@tsmesh/common';
import { MESH_CONTROLLER_NAME, desiredParents, existingParents, sameJson, type ParentStatusJson } from './parents.js';

const parentRef = { namespace: 'shop', name: 'web', port: 80, sectionName: undefined };
const computed = (...conditions: RouteCondition[]): RouteStatus => ({
  route: { kind: 'HTTPRoute', namespace: 'shop', name: 'canary' },
  parents: [{ parentRef, conditions }],
});
const accepted: RouteCondition = { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Route attached to the Service' };
const options = (now: string, generation = 3): { controllerName: string; generation: number; now: string } => ({ controllerName: MESH_CONTROLLER_NAME, generation, now });

describe('desiredParents', () => {
  it('stamps new conditions with now and observedGeneration, naming the Service parent in the core group', () => {
    const { parents, changed } = desiredParents([], computed(accepted), options('2026-01-01T00:00:00Z'));
    expect(changed).toBe(true);
    expect(parents).toEqual([
      {
        parentRef: { group: '', kind: 'Service', namespace: 'shop', name: 'web', port: 80 },
        controllerName: MESH_CONTROLLER_NAME,
        conditions: [{ ...accepted, lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 3 }],
      },
    ]);
  });

  it('reports no change when our entries are what they should be, whatever the key order', () => {
    const first = desiredParents([], computed(accepted), options('2026-01-01T00:00:00Z')).parents;
    expect(desiredParents(first, computed(accepted), options('2026-02-02T00:00:00Z')).changed).toBe(false);
    // As read back from the API server: keys in another order.
    const [entry] = first;
    if (entry === undefined) throw new Error('no entry');
    const reordered: ParentStatusJson = {
      conditions: entry.conditions.map((c) => Object.fromEntries(Object.entries(c).reverse()) as typeof c),
      controllerName: entry.controllerName,
      parentRef: Object.fromEntries(Object.entries(entry.parentRef).reverse()),
    };
    expect(desiredParents([reordered], computed(accepted), options('2026-02-02T00:00:00Z')).changed).toBe(false);
  });

  it('keeps lastTransitionTime when only the reason or message changes, and moves it when the status does', () => {
    const before = desiredParents([], computed(accepted), options('2026-01-01T00:00:00Z')).parents;
    const reworded = desiredParents(before, computed({ ...accepted, message: 'other words' }), options('2026-02-02T00:00:00Z'));
    expect(reworded.changed).toBe(true);
    expect(reworded.parents[0]?.conditions[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    const flipped = desiredParents(before, computed({ ...accepted, status: 'False', reason: 'NoMatchingParent' }), options('2026-02-02T00:00:00Z'));
    expect(flipped.parents[0]?.conditions[0]?.lastTransitionTime).toBe('2026-02-02T00:00:00Z');
  });

  it('writes again when the generation moved', () => {
    const before = desiredParents([], computed(accepted), options('2026-01-01T00:00:00Z', 1)).parents;
    const after = desiredParents(before, computed(accepted), options('2026-02-02T00:00:00Z', 2));
    expect(after.changed).toBe(true);
    expect(after.parents[0]?.conditions[0]).toMatchObject({ observedGeneration: 2, lastTransitionTime: '2026-01-01T00:00:00Z' });
  });

  it("keeps other controllers' entries first and untouched, and removes ours when no parent is left", () => {
    const theirs: ParentStatusJson = { parentRef: { name: 'edge' }, controllerName: 'example.com/gw', conditions: [] };
    const ours = desiredParents([theirs], computed(accepted), options('2026-01-01T00:00:00Z')).parents;
    expect(ours[0]).toBe(theirs);
    const gone = desiredParents(ours, { route: computed().route, parents: [] }, options('2026-01-01T00:00:00Z'));
    expect(gone).toEqual({ parents: [theirs], changed: true });
  });
});

describe('existingParents', () => {
  it('reads status.parents, and nothing from a missing or malformed status', () => {
    expect(existingParents({ status: { parents: [{ controllerName: 'x' }, 'junk'] } })).toEqual([{ controllerName: 'x' }]);
    expect(existingParents({})).toEqual([]);
    expect(existingParents({ status: { parents: 'junk' } })).toEqual([]);
  });
});

describe('sameJson', () => {
  it('compares JSON deeply, ignoring key order and undefined keys', () => {
    expect(sameJson({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameJson({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(sameJson({ a: 1 }, { a: '1' })).toBe(false);
  });
});
