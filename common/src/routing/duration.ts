// Gateway API durations (GEP-2257): one to four components of 1-5 decimal digits and a unit
// (h, m, s, ms), summed. Anything else, including Go's fractions and negatives, is refused.

const DURATION = /^(?:[0-9]{1,5}(?:ms|h|m|s)){1,4}$/;
const COMPONENT = /([0-9]{1,5})(ms|h|m|s)/g;

const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/** The duration in milliseconds, or undefined when `text` is not a GEP-2257 duration. */
export function parseGatewayDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, digits, unit] of text.matchAll(COMPONENT)) {
    total += Number(digits) * (UNIT_MS[unit ?? ''] ?? 0);
  }
  return total;
}

/** The canonical form of a duration in whole milliseconds: descending units, none repeated, `0s` for zero. */
export function formatGatewayDuration(ms: number): string {
  if (ms <= 0) return '0s';
  let rest = Math.floor(ms);
  let text = '';
  for (const unit of ['h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit] ?? 1;
    const count = Math.floor(rest / size);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * size;
  }
  return text;
}
