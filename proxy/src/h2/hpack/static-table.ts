// HPACK's static table (RFC 7541 Appendix A) and the two lookups the encoder needs, built once at
// module load. Hand-written because the table is a fact of the RFC, not something to depend on.

/** Entries 1..61 as [name, value]; STATIC_TABLE[i - 1] is index i. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

export const STATIC_TABLE_LENGTH = 61;

/** Names and values by HPACK index (slot 0 unused), so the decoder indexes without a tuple hop. */
export const STATIC_NAMES: readonly string[] = ['', ...STATIC_TABLE.map((e) => e[0])];
export const STATIC_VALUES: readonly string[] = ['', ...STATIC_TABLE.map((e) => e[1])];

/** What the encoder needs to know of a name: its lowest index, and the index of each value it has. */
export interface StaticName {
  readonly index: number;
  readonly values: ReadonlyMap<string, number>;
}

/** name → its static entries; one lookup answers both "exact match?" and "name match?". */
export const STATIC_BY_NAME: ReadonlyMap<string, StaticName> = (() => {
  const byName = new Map<string, { index: number; values: Map<string, number> }>();
  STATIC_TABLE.forEach(([name, value], i) => {
    let entry = byName.get(name);
    if (entry === undefined) byName.set(name, (entry = { index: i + 1, values: new Map() }));
    if (!entry.values.has(value)) entry.values.set(value, i + 1);
  });
  return byName;
})();
