// originalDst on connections really redirected by netfilter (needs root and the built package):
// a namespace where OUTPUT REDIRECTs port 80 to a local listener, over IPv4 and IPv6.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { canUseNetns, createNetns, deleteNetns, runNodeInNetns } from '../iptables/testing/netns.js';

// The child process runs in the namespace and loads the compiled module (`npx tsc -b` first).
const BUILT = new URL('../../dist/capture/original-dst.js', import.meta.url);
const enabled = canUseNetns() && existsSync(BUILT);
const suite = enabled ? describe : describe.skip;

const SCRIPT = `
const net = require('node:net');
const [modulePath, host] = process.argv.slice(1);
import(modulePath).then(({ originalDst }) => {
  const server = net.createServer((socket) => {
    const result = originalDst(socket);
    console.log(JSON.stringify(result.ok ? result.value : { error: result.error.message }));
    socket.destroy();
    server.close();
    process.exit(0);
  });
  server.listen(15001, '::', () => {
    const client = net.connect({ host, port: 80 });
    client.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(0); });
  });
});`;

suite('originalDst on redirected connections', () => {
  let ns: string | undefined;

  beforeAll(() => {
    ns = createNetns('odst');
    const run = (...args: string[]): void => {
      execFileSync('ip', ['netns', 'exec', ns ?? '', ...args]);
    };
    // Any up interface with these prefixes gives the Service addresses a route; OUTPUT NAT does the rest.
    run('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    run('ip', 'link', 'set', 'v0', 'up');
    run('ip', 'link', 'set', 'v1', 'up');
    run('ip', 'addr', 'add', '10.96.0.1/16', 'dev', 'v0');
    run('ip', '-6', 'addr', 'add', 'fd00:96::1/64', 'dev', 'v0', 'nodad');
    for (const cmd of ['iptables', 'ip6tables']) run(cmd, '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '80', '-j', 'REDIRECT', '--to-ports', '15001');
  });

  afterAll(() => deleteNetns(ns));

  test('reads the IPv4 address and port the client dialled', async () => {
    const out = await runNodeInNetns(ns ?? '', SCRIPT, [BUILT.href, '10.96.0.10']);
    expect(JSON.parse(out)).toEqual({ address: '10.96.0.10', port: 80, family: 4 });
  });

  test('reads the IPv6 address (compressed) and port the client dialled', async () => {
    const out = await runNodeInNetns(ns ?? '', SCRIPT, [BUILT.href, 'fd00:96::10']);
    expect(JSON.parse(out)).toEqual({ address: 'fd00:96::10', port: 80, family: 6 });
  });
});
