// Process-wide pino root logger; every module takes a child with its own `component` field.
import { isMainThread, workerData } from 'node:worker_threads';
import { pino, type Logger, type Level } from 'pino';

const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** A worker thread names itself on every line it logs: `workerData.logBindings`, e.g. `{ loop: 1 }`. */
function threadBindings(): Record<string, unknown> {
  if (isMainThread) return {};
  const bindings = (workerData as { logBindings?: unknown } | null | undefined)?.logBindings;
  return typeof bindings === 'object' && bindings !== null ? (bindings as Record<string, unknown>) : {};
}

export const rootLogger: Logger = pino({
  level: 'info',
  base: { pid: process.pid, ...threadBindings() },
  timestamp: pino.stdTimeFunctions.isoTime,
});

/** A child logger for one module, e.g. `logger('balance.p2c')`. */
export function logger(component: string): Logger {
  return rootLogger.child({ component });
}

export function isLogLevel(value: string): value is Level | 'silent' {
  return LEVELS.includes(value);
}

/** Changes the level of the root logger and every child made from it. Throws on an unknown level. */
export function setLogLevel(level: string): void {
  if (!isLogLevel(level)) {
    throw new Error(`unknown log level "${level}" (expected one of ${LEVELS.join(', ')})`);
  }
  rootLogger.level = level;
}

export type { Logger };
