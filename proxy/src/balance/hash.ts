// Stable 32-bit string hashes for consistent hashing: the same key hashes the same in every
// proxy and every release, so all sidecars send a given key to the same endpoint.

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a (32-bit) over the UTF-8 bytes of `text`; a lone surrogate counts as its 3-byte form. */
export function fnv1a32(text: string): number {
  let h = FNV_OFFSET_BASIS;
  const step = (byte: number): void => {
    h = Math.imul(h ^ byte, FNV_PRIME);
  };
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      step(c);
      continue;
    }
    if (c < 0x800) {
      step(0xc0 | (c >>> 6));
      step(0x80 | (c & 0x3f));
      continue;
    }
    const low = c >= 0xd800 && c < 0xdc00 && i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
    if (low >= 0xdc00 && low < 0xe000) {
      c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
      i += 1;
      step(0xf0 | (c >>> 18));
      step(0x80 | ((c >>> 12) & 0x3f));
      step(0x80 | ((c >>> 6) & 0x3f));
      step(0x80 | (c & 0x3f));
      continue;
    }
    step(0xe0 | (c >>> 12));
    step(0x80 | ((c >>> 6) & 0x3f));
    step(0x80 | (c & 0x3f));
  }
  return h >>> 0;
}

/**
 * Position of `text` on the hash ring: FNV-1a followed by a 32-bit avalanche finalizer, because
 * plain FNV-1a leaves near-identical inputs (`10.0.0.1:80#1`, `#2`, ...) close together on the ring.
 */
export function ringPosition(text: string): number {
  let h = fnv1a32(text);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
