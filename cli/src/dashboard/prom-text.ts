// Reads the Prometheus text exposition format (version 0.0.4) that the sidecars serve at
// :15020/metrics: one sample per line, `name{label="value",...} value [timestamp]`. The input is
// another process's output, so it is read defensively: a line that does not parse is skipped and
// counted, never thrown, and every size is bounded.

/** One sample: a metric name, its labels and its value. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ParsedText {
  readonly samples: readonly Sample[];
  /** Lines that were neither a comment, blank, nor a sample. */
  readonly skipped: number;
}

/** Limits on what one scrape may hold; past them the rest is skipped. */
export const PROM_LIMITS = Object.freeze({
  /** Characters of one line (a series with many long labels is a few KiB). */
  maxLineLength: 64 * 1024,
  /** Labels of one sample. */
  maxLabels: 64,
  /** Samples of one scrape. */
  maxSamples: 200_000,
});

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** A sample value: a float, `NaN`, `+Inf`, `-Inf` (the format's spellings). */
export function parseValue(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** Parses one sample line, or undefined when it is not one. */
export function parseSampleLine(line: string): Sample | undefined {
  const nameMatch = NAME.exec(line);
  if (!nameMatch) return undefined;
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = Object.create(null) as Record<string, string>;
  if (line[i] === '{') {
    i++;
    let count = 0;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const labelMatch = LABEL_NAME.exec(line.slice(i, i + 256));
      if (!labelMatch) return undefined;
      const label = labelMatch[0];
      i += label.length;
      if (line[i] !== '=' || line[i + 1] !== '"') return undefined;
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return undefined;
        if (c === '"') break;
        if (c === '\\') {
          const next = line[i + 1];
          if (next === 'n') value += '\n';
          else if (next === '\\' || next === '"') value += next;
          else return undefined;
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      if (++count > PROM_LIMITS.maxLabels || label in labels) return undefined;
      labels[label] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return undefined;
    }
  }
  const rest = line.slice(i).trim().split(/[ \t]+/);
  if (!/^[ \t]/.test(line.slice(i)) || rest.length < 1 || rest.length > 2) return undefined;
  const value = parseValue(rest[0] ?? '');
  if (value === undefined) return undefined;
  if (rest.length === 2 && !/^-?\d+$/.test(rest[1] ?? '')) return undefined;
  return { name, labels, value };
}

/** Every sample of a scrape body; comments (`# HELP`, `# TYPE`) and blank lines are passed over. */
export function parsePrometheusText(text: string): ParsedText {
  const samples: Sample[] = [];
  let skipped = 0;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.startsWith('#')) continue;
    if (line.length > PROM_LIMITS.maxLineLength || samples.length >= PROM_LIMITS.maxSamples) {
      skipped++;
      continue;
    }
    const sample = parseSampleLine(line);
    if (sample) samples.push(sample);
    else skipped++;
  }
  return { samples, skipped };
}
