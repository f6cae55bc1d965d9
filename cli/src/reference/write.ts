// `npm run reference`: rewrites the commands part of docs/reference.md from the CLI's usage texts.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { commandsSection, replaceSection } from './commands.js';

// dist/reference/write.js → the repository root.
const file = fileURLToPath(new URL('../../../docs/reference.md', import.meta.url));
const before = readFileSync(file, 'utf8');
const after = replaceSection(before, await commandsSection());
if (after === before) {
  process.stdout.write(`${file}: up to date\n`);
} else {
  writeFileSync(file, after);
  process.stdout.write(`${file}: commands rewritten\n`);
}
