// Trace-context propagation, W3C Trace Context and B3, read from a request's headers and written
// onto the request the proxy forwards. Pure functions, no OpenTelemetry: works (and is tested)
// whether or not the SDK runs. Invalid headers are ignored, which makes the request a new trace.

/** One header as Node gives it: http1 `IncomingHttpHeaders` and http2 headers both fit. */
export type HeaderValue = string | readonly string[] | undefined;
/** Reads a request header by its lowercase name. */
export type HeaderGetter = (name: string) => HeaderValue;
/** A getter, or a headers object with lowercase keys (`req.headers`, an http2 headers object). */
export type HeaderSource = HeaderGetter | Readonly<Record<string, HeaderValue | number>>;

/** Where an incoming context was read from. */
export type TraceFormat = 'w3c' | 'b3-single' | 'b3-multi';
/** How B3 is written upstream: one `b3` header, or the `x-b3-*` set. */
export type B3Style = 'single' | 'multi';

/** A span's identity as propagated between hops. Ids are lowercase hex, 128-bit trace ids. */
export interface TraceContext {
  /** 32 lowercase hex digits (a 64-bit B3 id is left-padded with zeros). */
  readonly traceId: string;
  /** 16 lowercase hex digits: the span the next hop's span is a child of. */
  readonly spanId: string;
  /** The sampling decision; `undefined` only for a B3 context that deferred it. */
  readonly sampled: boolean | undefined;
  /** B3 debug (`d`, `x-b3-flags: 1`): force sampling. Implies `sampled`. */
  readonly debug?: boolean;
  /** The parent of `spanId`, written in B3 when known (W3C does not carry it). */
  readonly parentSpanId?: string;
  /** The validated W3C `tracestate` list, forwarded unchanged. */
  readonly traceState?: string;
}

/** A context read from request headers, with the header family it came from. */
export interface ExtractedContext extends TraceContext {
  readonly format: TraceFormat;
}

/**
 * Every header this module reads or writes. The data path removes all of them from the request
 * it forwards before setting the ones a record's `upstreamHeaders()` returns, so no stale
 * context (say, an app's `x-b3-parentspanid`) survives next to the new one.
 */
export const TRACE_HEADERS: readonly string[] = Object.freeze([
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
]);

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const B3_TRACE_ID = /^(?:[0-9a-f]{16}){1,2}$/;
const ZEROS = /^0+$/;
const TRACEPARENT_V0 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const TRACEPARENT_ANY = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const TRACESTATE_KEY = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
// Printable ASCII except `,` and `=`; may contain spaces but not end with one.
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const TRACESTATE_MAX_MEMBERS = 32;
const TRACESTATE_MAX_LENGTH = 512;

function getter(headers: HeaderSource): HeaderGetter {
  if (typeof headers === 'function') return headers;
  return (name) => {
    const value = headers[name];
    return typeof value === 'number' ? String(value) : value;
  };
}

/** A header that must appear once; repeated or absent gives `undefined`. */
function single(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value.trim();
  return value.length === 1 ? value[0]?.trim() : undefined;
}

function validId(hex: string): boolean {
  return !ZEROS.test(hex);
}

/** Parses a `traceparent` value (any version but `ff`); `undefined` if invalid. */
export function parseTraceparent(value: string): TraceContext | undefined {
  const v0 = TRACEPARENT_V0.exec(value);
  let traceId: string | undefined;
  let spanId: string | undefined;
  let flags: string | undefined;
  if (v0) {
    [, traceId, spanId, flags] = v0;
  } else {
    // A future version: parse the fields version 00 defines, ignore anything after them.
    const any = TRACEPARENT_ANY.exec(value);
    if (!any || any[1] === '00' || any[1] === 'ff') return undefined;
    [, , traceId, spanId, flags] = any;
  }
  if (traceId === undefined || spanId === undefined || flags === undefined) return undefined;
  if (!validId(traceId) || !validId(spanId)) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

/**
 * Keeps the well-formed members of a `tracestate` value (at most 32, at most 512 characters);
 * `undefined` when none is left.
 */
export function parseTracestate(value: string): string | undefined {
  const members: string[] = [];
  let length = 0;
  for (const raw of value.split(',')) {
    const member = raw.trim();
    if (member === '') continue;
    const eq = member.indexOf('=');
    if (eq <= 0) continue;
    if (!TRACESTATE_KEY.test(member.slice(0, eq)) || !TRACESTATE_VALUE.test(member.slice(eq + 1))) continue;
    const added = member.length + (members.length > 0 ? 1 : 0);
    if (members.length >= TRACESTATE_MAX_MEMBERS || length + added > TRACESTATE_MAX_LENGTH) break;
    members.push(member);
    length += added;
  }
  return members.length > 0 ? members.join(',') : undefined;
}

function b3TraceId(raw: string): string | undefined {
  const id = raw.toLowerCase();
  if (!B3_TRACE_ID.test(id) || !validId(id)) return undefined;
  return id.length === 16 ? `0000000000000000${id}` : id;
}

function b3SpanId(raw: string): string | undefined {
  const id = raw.toLowerCase();
  return HEX16.test(id) && validId(id) ? id : undefined;
}

/**
 * Parses a single `b3` header: `{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`, sampled one of
 * `0`, `1`, `d`. A sampling-only value (`b3: 0`) carries no ids and gives `undefined`.
 */
export function parseB3Single(value: string): TraceContext | undefined {
  const parts = value.split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const traceId = b3TraceId(parts[0] ?? '');
  const spanId = b3SpanId(parts[1] ?? '');
  if (traceId === undefined || spanId === undefined) return undefined;
  let sampled: boolean | undefined;
  let debug = false;
  const state = parts[2];
  if (state !== undefined) {
    if (state === '1') sampled = true;
    else if (state === '0') sampled = false;
    else if (state === 'd') [sampled, debug] = [true, true];
    else return undefined;
  }
  let parentSpanId: string | undefined;
  if (parts[3] !== undefined) {
    parentSpanId = b3SpanId(parts[3]);
    if (parentSpanId === undefined) return undefined;
  }
  return b3Context(traceId, spanId, sampled, debug, parentSpanId);
}

/** A B3 context (single header or `x-b3-*` set) with `debug` and `parentSpanId` only when present. */
function b3Context(traceId: string, spanId: string, sampled: boolean | undefined, debug: boolean, parentSpanId: string | undefined): TraceContext {
  return {
    traceId,
    spanId,
    sampled,
    ...(debug ? { debug } : {}),
    ...(parentSpanId !== undefined ? { parentSpanId } : {}),
  };
}

function b3SampledValue(value: string | undefined): boolean | undefined | 'invalid' {
  if (value === undefined) return undefined;
  switch (value.toLowerCase()) {
    case '1':
    case 'true':
      return true;
    case '0':
    case 'false':
      return false;
    default:
      return 'invalid';
  }
}

/** Parses the `x-b3-*` set; `undefined` when the trace or span id is missing or invalid. */
export function parseB3Multi(get: HeaderGetter): TraceContext | undefined {
  const rawTrace = single(get('x-b3-traceid'));
  const rawSpan = single(get('x-b3-spanid'));
  if (rawTrace === undefined || rawSpan === undefined) return undefined;
  const traceId = b3TraceId(rawTrace);
  const spanId = b3SpanId(rawSpan);
  if (traceId === undefined || spanId === undefined) return undefined;
  let sampled = b3SampledValue(single(get('x-b3-sampled')));
  if (sampled === 'invalid') return undefined;
  const debug = single(get('x-b3-flags')) === '1';
  if (debug) sampled = true;
  const rawParent = single(get('x-b3-parentspanid'));
  // The parent is informational (the proxy never uses it to build its tree): a bad one is dropped.
  const parentSpanId = rawParent === undefined ? undefined : b3SpanId(rawParent);
  return b3Context(traceId, spanId, sampled, debug, parentSpanId);
}

/**
 * Reads the incoming trace context: W3C `traceparent` (with `tracestate`) if valid, else a single
 * `b3` header, else the `x-b3-*` set. `undefined` means none was valid: the request starts a trace.
 */
export function extract(headers: HeaderSource): ExtractedContext | undefined {
  const get = getter(headers);
  const traceparent = single(get('traceparent'));
  if (traceparent !== undefined) {
    const ctx = parseTraceparent(traceparent);
    if (ctx) {
      const rawState = get('tracestate');
      const joined = rawState === undefined ? undefined : typeof rawState === 'string' ? rawState : rawState.join(',');
      const traceState = joined === undefined ? undefined : parseTracestate(joined);
      return { ...ctx, ...(traceState !== undefined ? { traceState } : {}), format: 'w3c' };
    }
  }
  const b3 = single(get('b3'));
  if (b3 !== undefined) {
    const ctx = parseB3Single(b3);
    if (ctx) return { ...ctx, format: 'b3-single' };
  }
  const multi = parseB3Multi(get);
  return multi ? { ...multi, format: 'b3-multi' } : undefined;
}

/** `multi` when the request carried any `x-b3-*` header (whichever context won), else `single`. */
export function b3StyleOf(headers: HeaderSource): B3Style {
  const get = getter(headers);
  return get('x-b3-traceid') !== undefined || get('x-b3-spanid') !== undefined || get('x-b3-sampled') !== undefined
    ? 'multi'
    : 'single';
}

/** The `traceparent` value for a context: version 00, sampled flag from `sampled` or `debug`. */
export function formatTraceparent(ctx: TraceContext): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${ctx.sampled === true || ctx.debug === true ? '01' : '00'}`;
}

/** The single `b3` header value for a context (the sampling state is left out if undecided). */
export function formatB3Single(ctx: TraceContext): string {
  const state = ctx.debug === true ? 'd' : ctx.sampled === undefined ? undefined : ctx.sampled ? '1' : '0';
  if (state === undefined) return `${ctx.traceId}-${ctx.spanId}`;
  return ctx.parentSpanId === undefined
    ? `${ctx.traceId}-${ctx.spanId}-${state}`
    : `${ctx.traceId}-${ctx.spanId}-${state}-${ctx.parentSpanId}`;
}

/**
 * Writes `ctx` into `target` as W3C (`traceparent`, and `tracestate` when present) and as B3 in
 * `style` (the style the request came with, see `b3StyleOf`), so apps speaking either continue the
 * trace. Returns `target`.
 */
export function inject(target: Record<string, string>, ctx: TraceContext, style: B3Style = 'single'): Record<string, string> {
  target['traceparent'] = formatTraceparent(ctx);
  if (ctx.traceState !== undefined && ctx.traceState !== '') target['tracestate'] = ctx.traceState;
  if (style === 'single') {
    target['b3'] = formatB3Single(ctx);
    return target;
  }
  target['x-b3-traceid'] = ctx.traceId;
  target['x-b3-spanid'] = ctx.spanId;
  if (ctx.parentSpanId !== undefined) target['x-b3-parentspanid'] = ctx.parentSpanId;
  // Debug implies sampled; B3 says not to send both.
  if (ctx.debug === true) target['x-b3-flags'] = '1';
  else if (ctx.sampled !== undefined) target['x-b3-sampled'] = ctx.sampled ? '1' : '0';
  return target;
}

/** Whether a string is a valid 128-bit trace id / 64-bit span id as this module writes them. */
export function isTraceId(id: string): boolean {
  return HEX32.test(id) && validId(id);
}

export function isSpanId(id: string): boolean {
  return HEX16.test(id) && validId(id);
}
