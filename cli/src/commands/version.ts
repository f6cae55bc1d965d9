// `tsmesh version`: the client's version, and with --proxy a sidecar's (its admin /server_info).
import { adminGetJson, formatAddress, parseAdminAddress, type AdminAddress } from '../admin-client.js';
import { UsageError, type Command } from '../command.js';
import { clientBuildInfo } from '../version.js';

const HELP = `tsmesh version: print tsmesh's version

Usage: tsmesh version [--proxy HOST:PORT] [-o text|json]
       tsmesh --version

  --proxy HOST:PORT  also ask a running sidecar's admin server (127.0.0.1:15000 in its pod;
                     a bare PORT means 127.0.0.1) for its version (GET /server_info)
  -o, --output FMT   text (default) or json

The client's version comes from its package.json; nothing is asked of git.
`;

interface VersionFlags {
  readonly proxy: AdminAddress | undefined;
  readonly output: 'text' | 'json';
}

function parse(argv: readonly string[]): VersionFlags {
  let proxy: AdminAddress | undefined;
  let output: VersionFlags['output'] = 'text';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    if (flag === '--proxy') proxy = parseAdminAddress('--proxy', value());
    else if (flag === '-o' || flag === '--output') {
      const v = value();
      if (v !== 'text' && v !== 'json') throw new UsageError(`${flag}: "${v ?? ''}" is not an output format (text or json)`);
      output = v;
    } else throw new UsageError(`unknown flag "${arg}" (see tsmesh version --help)`);
  }
  return { proxy, output };
}

export const versionCommand: Command = {
  name: 'version',
  summary: "print tsmesh's version (and a sidecar's with --proxy)",
  help: HELP,
  async run(argv) {
    const flags = parse(argv);
    const client = clientBuildInfo();
    const proxy = flags.proxy ? ((await adminGetJson(flags.proxy, '/server_info')) as Record<string, unknown>) : undefined;
    if (flags.output === 'json') {
      process.stdout.write(`${JSON.stringify(proxy ? { client, proxy: { address: formatAddress(flags.proxy!), ...proxy } } : { client }, null, 2)}\n`);
      return 0;
    }
    let text = `tsmesh ${client.version} (Node.js ${client.node}, ${client.platform})\n`;
    if (proxy) text += `sidecar ${formatAddress(flags.proxy!)}: ${String(proxy.version)} (Node.js ${String(proxy.node)})\n`;
    process.stdout.write(text);
    return 0;
  },
};
