// Entry point of a sample workload process: `node workload-main.js <kind> [--flag value ...]`.
// Servers print `ready` once listening; clients print one JSON result line and exit.
import { existsSync } from 'node:fs';
import { startCollector } from './collector.js';
import { readBanner, runGrpcClient, runHttpClient, startBannerServer, startGrpcServer, startHttpServer } from './workloads.js';

function flags(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) out.set((argv[i] ?? '').replace(/^--/, ''), argv[i + 1] ?? '');
  return out;
}

async function main(): Promise<void> {
  const [kind, ...rest] = process.argv.slice(2);
  const f = flags(rest);
  const num = (name: string, fallback: number): number => Number(f.get(name) ?? fallback);
  const name = f.get('name') ?? 'app';
  switch (kind) {
    case 'grpc-server':
      await startGrpcServer(num('port', 50051), name);
      break;
    case 'http-server':
      await startHttpServer(num('port', 8080), name);
      break;
    case 'banner-server':
      await startBannerServer(num('port', 7000), name);
      break;
    case 'collector':
      await startCollector(num('port', 9411), f.get('out') || 'spans.jsonl');
      break;
    case 'grpc-client': {
      const every = num('progress-every', 0);
      // --pause-at N --resume-file F: after call N, print {"paused":N} and make no call until F exists,
      // so a driver acts (kills a replica) at a known point of the run, however loaded the machine.
      const pauseAt = num('pause-at', 0);
      const resumeFile = f.get('resume-file') ?? '';
      const result = await runGrpcClient({
        target: f.get('target') ?? '',
        calls: num('calls', 30),
        intervalMs: num('interval-ms', 0),
        onProgress: async (done) => {
          if (every > 0 && done % every === 0) console.log(JSON.stringify({ progress: done }));
          if (done !== pauseAt) return;
          console.log(JSON.stringify({ paused: done }));
          while (!existsSync(resumeFile)) await new Promise((r) => setTimeout(r, 5));
        },
      });
      console.log(JSON.stringify({ result }));
      return;
    }
    case 'http-client':
      console.log(JSON.stringify({ result: await runHttpClient(f.get('url') ?? '', num('requests', 30)) }));
      return;
    case 'banner-client':
      console.log(JSON.stringify({ result: await readBanner(f.get('host') ?? '', num('port', 7000), num('timeout-ms', 5000)) }));
      return;
    default:
      throw new Error(`unknown workload kind "${kind}"`);
  }
  console.log('ready');
}

main().catch((error: unknown) => {
  console.error(`workload: ${(error as Error).message}`);
  process.exit(1);
});
