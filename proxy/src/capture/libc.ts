// The two socket calls Node does not expose, reached through koffi (prebuilt FFI, no compiler):
// getsockopt (SO_ORIGINAL_DST) and recv (MSG_PEEK for protocol detection without consuming bytes).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export interface Libc {
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: number[]): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  errno(): number;
}

let libc: Libc | undefined;
let loadError: unknown;

/** Loads libc once; undefined (with `libcLoadError()`) where koffi or glibc is unavailable. */
export function loadLibc(): Libc | undefined {
  if (libc || loadError) return libc;
  try {
    const koffi = require('koffi') as {
      load(path: string): { func(signature: string): (...args: unknown[]) => number };
      errno(): number;
    };
    const lib = koffi.load('libc.so.6');
    const getsockopt = lib.func(
      'int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)',
    );
    const recv = lib.func('long recv(int fd, _Out_ uint8_t *buf, size_t len, int flags)');
    libc = {
      getsockopt: (fd, level, name, value, length) => getsockopt(fd, level, name, value, length),
      recv: (fd, buf, len, flags) => Number(recv(fd, buf, len, flags)),
      errno: () => koffi.errno(),
    };
  } catch (error) {
    loadError = error;
  }
  return libc;
}

export function libcLoadError(): unknown {
  return loadError;
}

/** The kernel file descriptor behind a net.Socket (Linux TCP handles expose it). */
export function socketFd(socket: object): number | undefined {
  const fd = (socket as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
