// Node's own HTTP/1 parser, llhttp, as node:http drives it, without node:http around it. The
// relay uses it directly because node:http's per-request objects (IncomingMessage,
// ServerResponse, ClientRequest, their streams and events) are what an HTTP/1.1 request costs
// there, not the parsing; and because it is the same strict parser (CL+TE, duplicate
// Content-Length, obs-fold, bare LF and chunk-size overflow are refused), no parser facing
// hostile input is hand-written here.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The native parser's surface, as lib/_http_common.js and lib/_http_server.js use it. */
export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  /** Bytes consumed, or an Error with `code` (`HPE_*`) and `bytesParsed`. An upgrade stops after its head. */
  execute(data: Buffer): number | ParseError;
  /** End of input: completes a close-delimited body; an Error when a message was cut short. */
  finish(): undefined | ParseError;
  close(): void;
  free(): void;
  remove(): void;
  [key: number]: unknown;
}

export interface ParseError extends Error {
  readonly code: string;
  readonly bytesParsed: number;
}

interface HttpCommon {
  HTTPParser: {
    new (): LlhttpParser;
    readonly REQUEST: number;
    readonly RESPONSE: number;
    readonly kOnHeaders: number;
    readonly kOnHeadersComplete: number;
    readonly kOnBody: number;
    readonly kOnMessageComplete: number;
    readonly kOnExecute: number;
    readonly kLenientNone: number;
  };
  readonly methods: readonly string[];
  _checkIsHttpToken(name: string): boolean;
  _checkInvalidHeaderChar(value: string): boolean;
}

const common = require('_http_common') as HttpCommon;

export const HTTPParser = common.HTTPParser;

/**
 * Whether a header the sidecar adds (route edits, XFCC) can be written as is: a token name and a
 * value without CR, LF or NUL, as node:http's own check. Headers llhttp parsed are valid already.
 */
export function isWritableHeader(name: string, value: string): boolean {
  return common._checkIsHttpToken(name) && !common._checkInvalidHeaderChar(value);
}

/** Called when a message head is complete; for responses, return 1 to expect no body (HEAD, 1xx, 304). */
export type OnHeadersComplete = (
  versionMajor: number,
  versionMinor: number,
  rawHeaders: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  statusCode: number | undefined,
  statusMessage: string | undefined,
  upgrade: boolean,
  shouldKeepAlive: boolean,
) => number;

export interface ParserCallbacks {
  /** Headers flushed before the head completes (more than 32), or trailers after a chunked body. */
  onHeaders(rawHeaders: string[], url: string): void;
  onHeadersComplete: OnHeadersComplete;
  /** A view of the socket's read buffer: copy or forward it before returning if it must outlive the chunk. */
  onBody(chunk: Buffer): void;
  onMessageComplete(): void;
}

/** A strict parser (no leniency) of `type`, with its callbacks bound. */
export function newParser(type: number, maxHeaderBytes: number, callbacks: ParserCallbacks): LlhttpParser {
  const parser = new HTTPParser();
  parser.initialize(type, {}, maxHeaderBytes, HTTPParser.kLenientNone);
  parser[HTTPParser.kOnHeaders] = callbacks.onHeaders;
  parser[HTTPParser.kOnHeadersComplete] = callbacks.onHeadersComplete;
  parser[HTTPParser.kOnBody] = callbacks.onBody;
  parser[HTTPParser.kOnMessageComplete] = callbacks.onMessageComplete;
  parser[HTTPParser.kOnExecute] = () => undefined;
  return parser;
}

/** execute() gives a byte count or an error; finish() undefined or an error. Not `instanceof`: the error may come from another realm (vm contexts). */
export function isParseError(value: number | ParseError | undefined): value is ParseError {
  return typeof value === 'object' && value !== null;
}

/**
 * Method names by the index llhttp reports. That index is llhttp's own enum (node maps it with its
 * internal `allMethods`, not the exported `methods`, which skips the RTSP ones: QUERY is 46 there,
 * 34 in `methods`), so the table is read off the parser itself, once, for every method node accepts.
 */
export const METHODS: readonly (string | undefined)[] = (() => {
  const table: (string | undefined)[] = [];
  for (const name of common.methods) {
    let index = -1;
    const parser = newParser(HTTPParser.REQUEST, 0, {
      onHeaders: () => undefined,
      onHeadersComplete: (_maj, _min, _raw, method) => {
        index = method ?? -1;
        return 0;
      },
      onBody: () => undefined,
      onMessageComplete: () => undefined,
    });
    parser.execute(Buffer.from(`${name} / HTTP/1.1\r\n\r\n`, 'latin1'));
    if (index >= 0) table[index] = name;
  }
  return table;
})();
