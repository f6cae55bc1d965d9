// Reading docs/reference.md in tests: its sections and the cells of its tables.
import { readFileSync } from 'node:fs';

/** docs/reference.md, from src/reference/ or dist/reference/. */
export const REFERENCE_FILE = new URL('../../../docs/reference.md', import.meta.url);

export function readReference(): string {
  return readFileSync(REFERENCE_FILE, 'utf8');
}

/** The text under the heading `title` (any level), up to the next heading of the same or a higher level. */
export function section(doc: string, title: string): string {
  const lines = doc.split('\n');
  const start = lines.findIndex((line) => /^#+ /.test(line) && line.replace(/^#+ /, '') === title);
  if (start < 0) throw new Error(`docs/reference.md has no section "${title}"`);
  const level = (lines[start] ?? '').indexOf(' ');
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((line) => /^#+ /.test(line) && line.indexOf(' ') <= level);
  return (end < 0 ? rest : rest.slice(0, end)).join('\n');
}

const SEPARATOR = /^\|[\s|:-]+\|$/;

/** The body rows of every table in `text` (headers and separator lines left out), each as its cells (trimmed; `\|` read as `|`). */
export function tableRows(text: string): string[][] {
  const lines = text.split('\n');
  return lines
    .filter((line, i) => line.startsWith('|') && !SEPARATOR.test(line) && !SEPARATOR.test(lines[i + 1] ?? ''))
    .map((line) =>
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim().replaceAll('\\|', '|')),
    );
}

/** Every `code` span in a cell. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
}
