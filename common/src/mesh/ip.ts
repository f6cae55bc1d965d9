// IP address helpers for the mesh model: one canonical spelling per address, so map lookups match
// what a socket reports (lower-case, zero-compressed IPv6; IPv4-mapped IPv6 reduced to IPv4).
import { isIPv4, isIPv6 } from 'node:net';

const MAPPED_PREFIX = '::ffff:';

/** The canonical form of an IPv4 or IPv6 address, or undefined when `text` is not an IP address. */
export function canonicalIp(text: string): string | undefined {
  if (isIPv4(text)) return text;
  if (!isIPv6(text) || text.includes('%')) return undefined;
  // The WHATWG URL parser prints IPv6 hosts in RFC 5952 form; it is the cheapest correct formatter at hand.
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  // It prints an IPv4-mapped address in hex (`::ffff:a00:1`); sockets print it dotted, the mesh as IPv4.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped === null) return host;
  const high = parseInt(mapped[1] ?? '0', 16);
  const low = parseInt(mapped[2] ?? '0', 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; other addresses unchanged. Cheap enough for the hot path. */
export function unmapIPv4(address: string): string {
  if (address.length > MAPPED_PREFIX.length && address.startsWith(MAPPED_PREFIX) && address.includes('.')) {
    return address.slice(MAPPED_PREFIX.length);
  }
  return address;
}

export function ipFamily(address: string): 'IPv4' | 'IPv6' | undefined {
  if (isIPv4(address)) return 'IPv4';
  if (isIPv6(address)) return 'IPv6';
  return undefined;
}
