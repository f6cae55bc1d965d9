// Kubernetes resource quantities ("100m", "128Mi", "1.5", "2e3"): syntax check and an approximate value
// for comparing a request with its limit.

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

const SUFFIX: Readonly<Record<string, number>> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/**
 * Parses a non-negative quantity as Kubernetes writes them. Returns its value in base units (cores,
 * bytes) as a float, or undefined when the text is not a quantity or is negative.
 */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  const [, sign, digits, suffix] = match;
  if (sign === '-') return undefined;
  const base = Number(digits);
  if (suffix === undefined) return base;
  const multiplier = SUFFIX[suffix];
  if (multiplier !== undefined) return base * multiplier;
  // A decimal exponent such as e3 or E-2.
  return base * 10 ** Number(suffix.slice(1));
}
