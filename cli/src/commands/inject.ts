// `tsmesh inject -f FILE`: prints FILE's manifests with the sidecar injected, exactly as the webhook
// would inject their pods (SPEC: Command line). Flags are parsed by @tsmesh/injector's config.ts.
import { readFile } from 'node:fs/promises';
import { TsmeshError } from '@tsmesh/common';
import { INJECT_HELP, INJECTOR_ERRORS, injectConfig, injectManifests, type InjectConfig } from '@tsmesh/injector';
import { UsageError, type Command } from '../command.js';

/** Where the command reads and writes; the process's own streams unless a test says otherwise. */
export interface InjectIo {
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const processIo: InjectIo = {
  readFile: (path) => readFile(path, 'utf8'),
  readStdin: () => readStream(process.stdin),
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

function config(argv: readonly string[]): InjectConfig {
  try {
    return injectConfig(argv);
  } catch (error) {
    if (error instanceof TsmeshError && error.code === INJECTOR_ERRORS.BAD_FLAG) throw new UsageError(error.message);
    throw error;
  }
}

export function makeInjectCommand(io: InjectIo = processIo): Command {
  return {
    name: 'inject',
    summary: 'print manifests with the sidecar injected',
    help: INJECT_HELP,
    async run(argv) {
      const { file, settings } = config(argv);
      const source = file === '-' ? 'standard input' : file;
      let text: string;
      try {
        text = file === '-' ? await io.readStdin() : await io.readFile(file);
      } catch (error) {
        throw new Error(`cannot read ${source}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
      const result = injectManifests(text, settings, source);
      if (!result.ok) throw result.error;
      for (const warning of result.value.warnings) io.stderr(`tsmesh inject: warning: ${warning}\n`);
      io.stdout(result.value.text);
      return 0;
    },
  };
}

export const injectCommand = makeInjectCommand();
