// Recovers the destination a redirected connection was originally addressed to, from the
// kernel's conntrack entry (getsockopt SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST through koffi).
import type { Socket } from 'node:net';
import { err, ok, TsmeshError, type Logger, type Result } from '@tsmesh/common';
import { libcLoadError, loadLibc, socketFd } from './libc.js';
import { PROXY_ERRORS } from '../errors.js';

const SOL_IP = 0;
const SOL_IPV6 = 41;
const SO_ORIGINAL_DST = 80; // IP6T_SO_ORIGINAL_DST has the same value
const AF_INET = 2;
const AF_INET6 = 10;

export interface OriginalDst {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/**
 * Where a captured connection was going: `fixed` when the listener has one (tests, a port that is
 * not redirected), else its original destination. Without one the socket is destroyed, `dropped`
 * logged as a warning on `log`, and undefined returned. The socket's errors are logged at debug.
 */
export function capturedDestination(socket: Socket, fixed: OriginalDst | undefined, log: Logger, dropped: string): OriginalDst | undefined {
  socket.on('error', (e) => log.debug({ err: e.message }, 'client socket error'));
  const dst = fixed ? ok(fixed) : originalDst(socket);
  if (dst.ok) return dst.value;
  log.warn({ err: dst.error.message, peer: socket.remoteAddress }, dropped);
  socket.destroy();
  return undefined;
}

/** Reads the pre-REDIRECT destination of an accepted socket. A value, never a throw. */
export function originalDst(socket: Socket): Result<OriginalDst, TsmeshError> {
  const libc = loadLibc();
  if (!libc) {
    return err(new TsmeshError(PROXY_ERRORS.ORIGINAL_DST, 'SO_ORIGINAL_DST is unavailable (koffi/libc not loadable)', { cause: libcLoadError() }));
  }
  const fd = socketFd(socket);
  if (fd === undefined) {
    return err(new TsmeshError(PROXY_ERRORS.ORIGINAL_DST, 'socket has no file descriptor'));
  }
  const v6 = socket.localFamily === 'IPv6' && !(socket.localAddress ?? '').startsWith('::ffff:');
  const buf = Buffer.alloc(28);
  const len = [buf.length];
  const rc = libc.getsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, buf, len);
  if (rc !== 0) {
    const errno = libc.errno();
    return err(new TsmeshError(PROXY_ERRORS.ORIGINAL_DST, `getsockopt(SO_ORIGINAL_DST) failed with errno ${errno} (connection not redirected?)`));
  }
  return parseSockaddr(buf);
}

/** Decodes a struct sockaddr_in / sockaddr_in6 (family in host order, port in network order). */
export function parseSockaddr(buf: Buffer): Result<OriginalDst, TsmeshError> {
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === AF_INET) {
    return ok({ address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port, family: 4 });
  }
  if (family === AF_INET6) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(8 + i * 2).toString(16));
    return ok({ address: compressIpv6(groups), port, family: 6 });
  }
  return err(new TsmeshError(PROXY_ERRORS.ORIGINAL_DST, `unexpected address family ${family}`));
}

function compressIpv6(groups: string[]): string {
  // Longest run of zero groups (length >= 2) becomes '::', as RFC 5952 recommends.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  const head = groups.slice(0, bestStart).join(':');
  const tail = groups.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}
