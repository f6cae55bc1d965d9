// HPACK (RFC 7541), the HTTP/2 header compression codec: the public API of this folder.
// Hand-written so its limits sit with the rest of the HTTP/2 codec's (see ../limits.ts).
export { HpackDecoder, markNeverIndexed } from './decoder.js';
export type { FieldList, HpackDecodeResult, HpackDecoderOptions } from './decoder.js';
export { HpackEncoder } from './encoder.js';
export type { HpackEncoderOptions } from './encoder.js';
export { huffmanEncodedLength } from './huffman.js';
