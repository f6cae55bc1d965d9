// The sidecar's answer to a client that began an HTTP request line and did not finish it in time
// (detect.ts): 408 and close, as an HTTP server would. Nothing it sent is forwarded; what is left
// unread is drained and dropped so that the close is a clean FIN, not a reset that eats the answer.
import type { Duplex } from 'node:stream';

/** How long the client gets to take the answer before the connection is destroyed. */
const LINGER_MS = 1_000;

const ANSWER = 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';

/** Answers 408 on `socket` (nothing forwarded from it yet) and closes it. */
export function refuseUnfinishedRequest(socket: Duplex): void {
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  socket.resume();
  socket.end(ANSWER);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
