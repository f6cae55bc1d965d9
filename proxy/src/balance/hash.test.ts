import { fnv1a32, ringPosition } from './hash.js';

/** FNV-1a computed the obvious way, over Node's own UTF-8 encoding. */
function referenceFnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

describe('fnv1a32', () => {
  it('matches the published FNV-1a test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('hashes the UTF-8 bytes of non-ASCII text', () => {
    for (const text of ['é', 'naïve café', '日本語', '😀 emoji', 'a\u07ffb\u0800c\uffff']) {
      expect(fnv1a32(text)).toBe(referenceFnv1a32(text));
    }
  });

  it('returns an unsigned 32-bit integer', () => {
    for (const text of ['x', 'user-42', '10.0.0.1:8080_7']) {
      const h = fnv1a32(text);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });
});

describe('ringPosition', () => {
  it('is stable for a given text', () => {
    expect(ringPosition('user-42')).toBe(ringPosition('user-42'));
  });

  it('scatters near-identical texts over the whole ring', () => {
    const quarters = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const q = Math.floor(ringPosition(`10.0.0.1:8080_${i}`) / 2 ** 30);
      quarters[q] = (quarters[q] ?? 0) + 1;
    }
    for (const n of quarters) expect(Math.abs(n - 1000)).toBeLessThan(150);
  });
});
