import { err, ok, type Result } from '@tsmesh/common';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import { cachedNamespaceLabels, staticNamespaceLabels, type Labels, type NamespaceLabels } from './namespaces.js';

class CountingSource implements NamespaceLabels {
  calls = 0;
  failing = false;
  labelsOf: Labels = { 'tsmesh-injection': 'enabled' };
  async labels(namespace: string): Promise<Result<Labels>> {
    this.calls += 1;
    if (this.failing) return err(injectorError(INJECTOR_ERRORS.NAMESPACE_LOOKUP, `cannot read ${namespace}`));
    return ok(this.labelsOf);
  }
}

describe('staticNamespaceLabels', () => {
  it('answers from its table, then its fallback, else with an error', async () => {
    const table = staticNamespaceLabels({ shop: { a: 'b' } });
    expect(await table.labels('shop')).toEqual(ok({ a: 'b' }));
    const missing = await table.labels('other');
    expect(missing.ok).toBe(false);
    expect(!missing.ok && missing.error.message).toBe('namespace other is not known');
    expect(await staticNamespaceLabels({}, {}).labels('other')).toEqual(ok({}));
  });
});

describe('cachedNamespaceLabels', () => {
  it('asks the source once per namespace until the answer expires', async () => {
    let now = 1_000;
    const source = new CountingSource();
    const cached = cachedNamespaceLabels(source, 30_000, () => now);
    await cached.labels('shop');
    await cached.labels('shop');
    expect(source.calls).toBe(1);
    await cached.labels('other');
    expect(source.calls).toBe(2);
    now += 30_000;
    source.labelsOf = {};
    expect(await cached.labels('shop')).toEqual(ok({}));
    expect(source.calls).toBe(3);
  });

  it('does not remember errors', async () => {
    const source = new CountingSource();
    source.failing = true;
    const cached = cachedNamespaceLabels(source, 30_000);
    expect((await cached.labels('shop')).ok).toBe(false);
    source.failing = false;
    expect((await cached.labels('shop')).ok).toBe(true);
    expect(source.calls).toBe(2);
  });
});
