// Test helper: a pino logger whose JSON lines are collected in memory.
import { pino, type Logger } from 'pino';

export interface CapturedLog {
  readonly logger: Logger;
  /** Every line written so far, parsed. */
  lines(): Record<string, unknown>[];
}

export function captureLog(level = 'info', bindings: Record<string, unknown> = {}): CapturedLog {
  const written: string[] = [];
  const root = pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    { write: (line: string) => void written.push(line) },
  );
  return {
    logger: root.child(bindings),
    lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
