// The one-off wire check before a case with trailers is measured: one request through each peer
// with `nghttp -v`, whose frame trace shows whether the trailers arrived as a HEADERS frame that
// ends the stream after the body (h2load counts the answers but not their trailers).
import type { Load } from './h2load.js';
import { run, type Workspace } from './processes.js';

/** One HEADERS block received on a stream: its fields and whether it ended the stream. */
export interface HeaderBlock {
  readonly fields: Readonly<Record<string, string>>;
  readonly endStream: boolean;
}

export interface NghttpResponse {
  /** HEADERS blocks in the order they arrived: the response headers, then any trailers. */
  readonly blocks: readonly HeaderBlock[];
  /** Bytes of DATA received. */
  readonly dataBytes: number;
}

const FIELD = /^\[\s*[\d.]+\] recv \(stream_id=\d+\) (:?[^:]+): (.*)$/;
const HEADERS_FRAME = /^\[\s*[\d.]+\] recv HEADERS frame <length=\d+, flags=0x([0-9a-f]+), stream_id=[1-9]\d*>/;
const DATA_FRAME = /^\[\s*[\d.]+\] recv DATA frame <length=(\d+), flags=0x[0-9a-f]+, stream_id=[1-9]\d*>/;
const END_STREAM = 0x1;

/** Parses the received side of `nghttp -v` for a single request: fields are printed before their HEADERS frame. */
export function parseNghttpVerbose(output: string): NghttpResponse {
  const blocks: HeaderBlock[] = [];
  let fields: Record<string, string> = {};
  let dataBytes = 0;
  for (const line of output.split('\n')) {
    const field = FIELD.exec(line);
    if (field) {
      fields[field[1] as string] = field[2] as string;
      continue;
    }
    const headers = HEADERS_FRAME.exec(line);
    if (headers) {
      blocks.push({ fields, endStream: (Number.parseInt(headers[1] as string, 16) & END_STREAM) !== 0 });
      fields = {};
      continue;
    }
    const data = DATA_FRAME.exec(line);
    if (data) dataBytes += Number(data[1]);
  }
  return { blocks, dataBytes };
}

export interface TrailerCheck {
  readonly ok: boolean;
  /** The response's status and the trailers that arrived (empty when none did). */
  readonly status?: string;
  readonly trailers: Readonly<Record<string, string>>;
  /** What is wrong, when not ok. */
  readonly problem?: string;
}

/** Whether the response is a 200 with a body, then a trailing HEADERS block holding every expected trailer and ending the stream. */
export function judgeTrailers(response: NghttpResponse, expected: Readonly<Record<string, string>>): TrailerCheck {
  const [head, ...rest] = response.blocks;
  const status = head?.fields[':status'];
  const last = rest.at(-1);
  const trailers = last && last.fields[':status'] === undefined ? last.fields : {};
  const want = Object.entries(expected).map(([name, value]) => `${name}: ${value}`);
  if (status !== '200') return { ok: false, status, trailers, problem: `status ${status ?? 'none'}, not 200` };
  if (response.dataBytes === 0) return { ok: false, status, trailers, problem: 'no body before the trailers' };
  if (!last || !last.endStream || last.fields[':status'] !== undefined) {
    return { ok: false, status, trailers, problem: `no trailers arrived (wanted ${want.join(', ')})` };
  }
  const missing = Object.entries(expected).filter(([name, value]) => trailers[name] !== value);
  if (missing.length > 0) {
    const got = Object.entries(trailers).map(([name, value]) => `${name}: ${value}`);
    return { ok: false, status, trailers, problem: `trailers ${got.join(', ') || 'none'}; wanted ${want.join(', ')}` };
  }
  return { ok: true, status, trailers };
}

/** Sends the load's request once with nghttp (h2c, prior knowledge) and judges its trailers. */
export async function checkTrailers(workspace: Workspace, nghttp: string, load: Load, expected: Readonly<Record<string, string>>): Promise<TrailerCheck> {
  const args = ['-v', '-n', '-t', '5'];
  for (const header of load.headers) args.push('-H', header);
  if (load.bodyFile) args.push('-d', load.bodyFile);
  try {
    const { stdout } = await run(workspace, nghttp, [...args, load.url], 10_000);
    return judgeTrailers(parseNghttpVerbose(stdout), expected);
  } catch (error) {
    return { ok: false, trailers: {}, problem: `nghttp failed: ${(error as Error).message}` };
  }
}
