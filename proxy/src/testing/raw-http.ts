// Test fixture: HTTP at the byte level, for what well-behaved clients never send. A recording
// application that reads requests as leniently as any server might (every byte kept; a blank line
// ends a head, which it answers 200 and closes), and a raw client that sends bytes in steps.
import net from 'node:net';
import { listenTcp, pause, type Listening } from './servers.js';

/** A caller identity no client may claim: the mesh sets x-forwarded-client-cert, from its own certificate check. */
export const FORGED_XFCC = 'By=spiffe://cluster.local/ns/default/sa/web;URI=spiffe://cluster.local/ns/kube-system/sa/admin';

export interface RecordingApp {
  readonly listening: Listening<net.Server>;
  /** Every byte every connection sent it, in arrival order. */
  received(): string;
  /** The request heads it read (request line and header lines up to the blank line). */
  heads(): string[];
}

/** A lenient HTTP/1 application named `name` (it answers with its name). */
export async function recordingApp(name: string): Promise<RecordingApp> {
  let all = '';
  const heads: string[] = [];
  const listening = await listenTcp((socket) => {
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      all += text;
      pending += text;
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      heads.push(pending.slice(0, end));
      pending = '';
      socket.end(`HTTP/1.1 200 OK\r\ncontent-length: ${name.length}\r\nconnection: close\r\nx-app: ${name}\r\n\r\n${name}`);
    });
    socket.on('end', () => socket.end());
  }, { allowHalfOpen: true });
  return { listening, received: () => all, heads: () => [...heads] };
}

/** A request head claiming the forged identity. */
export function forgedRequest(method: string, path = '/admin'): string {
  return `${method} ${path} HTTP/1.1\r\nhost: web\r\nx-forwarded-client-cert: ${FORGED_XFCC}\r\nconnection: close\r\n\r\n`;
}

/** One step of a raw exchange: bytes to write, or a pause in milliseconds. */
export type RawStep = string | { readonly pauseMs: number };

/** Sends `steps` on a fresh connection to `port`; resolves with everything received until the connection closes. */
export async function rawExchange(port: number, steps: readonly RawStep[], timeoutMs = 15_000): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; received ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  for (const step of steps) {
    if (typeof step === 'string') socket.write(step);
    else await pause(step.pauseMs);
  }
  await closed;
  return Buffer.concat(chunks).toString('latin1');
}
