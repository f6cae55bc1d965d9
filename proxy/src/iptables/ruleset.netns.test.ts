// Real traffic through the ruleset (needs root): a "pod" namespace with listeners standing in for
// the app (8080, 15020) and the proxy (15001, 15006), wired by a veth pair to a "remote" namespace.
// Every listener answers `<namespace>:<port it accepted on>`, so a reply says where a connection landed.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { setLogLevel } from '@tsmesh/common';
import { runIptables } from './apply.js';
import { netnsExecutor } from './executor.js';
import { parseIptablesFlags } from './flags.js';
import { canUseNetns, createNetns, deleteNetns, runNodeInNetns, startInNetns } from './testing/netns.js';

const describeAsRoot = canUseNetns() ? describe : describe.skip;

const POD_IP = '10.211.0.1';
const REMOTE_IP = '10.211.0.2';
const POD_IP6 = 'fd00:211::1';
const REMOTE_IP6 = 'fd00:211::2';
const PROXY_UID = '1337';

const SERVER = `
const net = require('node:net');
const [tag, ...ports] = process.argv.slice(1);
let pending = ports.length;
for (const port of ports) {
  net.createServer((s) => s.end(tag + ':' + s.localPort + '\\n'))
    .listen(Number(port), '::', () => { if (--pending === 0) console.log('ready'); });
}`;

// Connects (optionally as another uid, from a given local address) and prints the reply.
const CLIENT = `
const net = require('node:net');
const [host, port, uid, localAddress] = process.argv.slice(1);
if (uid) { process.setgroups([]); process.setgid(Number(uid)); process.setuid(Number(uid)); }
const s = net.connect({ host, port: Number(port), localAddress: localAddress || undefined });
let data = '';
s.setTimeout(3000, () => { console.log('timeout'); process.exit(0); });
s.on('data', (d) => { data += d; });
s.on('end', () => { console.log(data.trim()); process.exit(0); });
s.on('error', (e) => { console.log('error:' + e.code); process.exit(0); });`;

describeAsRoot('traffic through the tsmesh ruleset', () => {
  let pod: string | undefined;
  let remote: string | undefined;
  const helpers: ChildProcess[] = [];

  async function apply(...flags: string[]): Promise<void> {
    const options = parseIptablesFlags(flags);
    if (!options.ok) throw options.error;
    const result = await runIptables(options.value, netnsExecutor(pod ?? ''));
    if (!result.ok) throw result.error;
  }

  /** Connects from the pod: `as` = uid to connect as (default root), `from` = local address to bind. */
  function fromPod(host: string, port: number, opts: { as?: string; from?: string } = {}): Promise<string> {
    return runNodeInNetns(pod ?? '', CLIENT, [host, String(port), opts.as ?? '', opts.from ?? '']);
  }

  function fromRemote(host: string, port: number): Promise<string> {
    return runNodeInNetns(remote ?? '', CLIENT, [host, String(port), '', '']);
  }

  beforeAll(async () => {
    setLogLevel('silent');
    pod = createNetns('ipt');
    remote = createNetns('ipr');
    execFileSync('ip', ['-n', pod, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', remote]);
    execFileSync('ip', ['-n', pod, 'addr', 'add', `${POD_IP}/24`, 'dev', 'veth0']);
    execFileSync('ip', ['-n', pod, 'addr', 'add', `${POD_IP6}/64`, 'dev', 'veth0', 'nodad']);
    execFileSync('ip', ['-n', pod, 'link', 'set', 'veth0', 'up']);
    execFileSync('ip', ['-n', remote, 'addr', 'add', `${REMOTE_IP}/24`, 'dev', 'veth1']);
    execFileSync('ip', ['-n', remote, 'addr', 'add', `${REMOTE_IP6}/64`, 'dev', 'veth1', 'nodad']);
    execFileSync('ip', ['-n', remote, 'link', 'set', 'veth1', 'up']);
    helpers.push(await startInNetns(pod, SERVER, ['pod', '8080', '15001', '15006', '15020']));
    helpers.push(await startInNetns(remote, SERVER, ['remote', '8080', '15020']));
  });

  afterAll(() => {
    for (const helper of helpers) helper.kill();
    deleteNetns(pod);
    deleteNetns(remote);
  });

  describe('with the default flags', () => {
    beforeAll(() => apply());

    it('redirects the app\'s outgoing connection to the outbound port', async () => {
      expect(await fromPod(REMOTE_IP, 8080)).toBe('pod:15001');
    });

    it('does not redirect a connection made by uid 1337', async () => {
      expect(await fromPod(REMOTE_IP, 8080, { as: PROXY_UID })).toBe('remote:8080');
    });

    it('does not redirect loopback or mesh-reserved destination ports', async () => {
      expect(await fromPod('127.0.0.1', 8080)).toBe('pod:8080');
      expect(await fromPod(REMOTE_IP, 15020)).toBe('remote:15020');
    });

    it('redirects incoming connections to the inbound port, except mesh-reserved ports', async () => {
      expect(await fromRemote(POD_IP, 8080)).toBe('pod:15006');
      expect(await fromRemote(POD_IP, 15020)).toBe('pod:15020');
    });

    it('sends the app\'s connection to its own pod IP to the outbound port', async () => {
      expect(await fromPod(POD_IP, 8080)).toBe('pod:15001');
    });

    it('sends the proxy\'s connection to its own pod IP through inbound capture, without a loop', async () => {
      expect(await fromPod(POD_IP, 8080, { as: PROXY_UID })).toBe('pod:15006');
      expect(await fromPod(POD_IP, 15020, { as: PROXY_UID })).toBe('pod:15020');
    });

    it('lets the inbound proxy deliver to the app from 127.0.0.6 uncaptured', async () => {
      expect(await fromPod(POD_IP, 8080, { as: PROXY_UID, from: '127.0.0.6' })).toBe('pod:8080');
    });
  });

  describe('over IPv6 (auto: the pod has a global IPv6 address)', () => {
    beforeAll(() => apply());

    it('redirects the app\'s outgoing connection but not the proxy\'s', async () => {
      expect(await fromPod(REMOTE_IP6, 8080)).toBe('pod:15001');
      expect(await fromPod(REMOTE_IP6, 8080, { as: PROXY_UID })).toBe('remote:8080');
      expect(await fromPod('::1', 8080)).toBe('pod:8080');
    });

    it('redirects incoming connections to the inbound port', async () => {
      expect(await fromRemote(POD_IP6, 8080)).toBe('pod:15006');
    });

    it('sends the proxy to its own pod IP through inbound capture, and lets it deliver from ::6', async () => {
      expect(await fromPod(POD_IP6, 8080, { as: PROXY_UID })).toBe('pod:15006');
      expect(await fromPod(POD_IP6, 8080, { as: PROXY_UID, from: '::6' })).toBe('pod:8080');
    });
  });

  describe('with exclusions', () => {
    beforeAll(() => apply(`--exclude-outbound-ip-ranges=${REMOTE_IP}/32`, '--exclude-inbound-ports=8080'));
    afterAll(() => apply());

    it('leaves excluded destinations and inbound ports alone', async () => {
      expect(await fromPod(REMOTE_IP, 8080)).toBe('remote:8080');
      expect(await fromRemote(POD_IP, 8080)).toBe('pod:8080');
    });
  });

  describe('with included ports and ranges', () => {
    beforeAll(() => apply('--include-inbound-ports=9090', '--include-outbound-ip-ranges=10.99.0.0/16'));
    afterAll(() => apply());

    it('captures nothing outside them', async () => {
      expect(await fromPod(REMOTE_IP, 8080)).toBe('remote:8080');
      expect(await fromRemote(POD_IP, 8080)).toBe('pod:8080');
    });
  });

  describe('after cleanup', () => {
    beforeAll(() => apply('--cleanup'));

    it('captures nothing at all', async () => {
      expect(await fromPod(REMOTE_IP, 8080)).toBe('remote:8080');
      expect(await fromRemote(POD_IP, 8080)).toBe('pod:8080');
    });
  });
});
