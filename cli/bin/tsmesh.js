#!/usr/bin/env node
// The `tsmesh` command npm links (cli/package.json "bin"). It is committed, not built, so that
// npm can link it at `npm ci` time, before `npm run build` has made dist/; it runs the built CLI.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('tsmesh: the CLI is not built yet (no cli/dist/main.js): run `npm run build` at the repository root\n');
  process.exit(1);
}
await import(main.href);
