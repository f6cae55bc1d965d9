// `tsmesh version --proxy` against a running sidecar (two event loops), and the sidecar's
// `tsmesh_build_info` on its /metrics: one series at 1, with the version `tsmesh version` prints.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from '../testing/run-cli.js';
import { oneServiceMesh, startSidecar, type SidecarProcess } from '../testing/sidecar.js';

const proxyVersion = (JSON.parse(readFileSync(new URL('../../../proxy/package.json', import.meta.url), 'utf8')) as { version: string }).version;
const cliVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('tsmesh version with a running sidecar', () => {
  let dir: string;
  let sidecar: SidecarProcess;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-version-'));
    writeFileSync(join(dir, 'mesh.yaml'), oneServiceMesh('web', '10.96.0.30', 8080));
    sidecar = await startSidecar(join(dir, 'mesh.yaml'), ['--concurrency', '2']);
  }, 30_000);
  afterAll(async () => {
    sidecar?.child.kill('SIGKILL');
    await sidecar?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints the client's and the sidecar's versions, as text and as JSON", async () => {
    const text = await runCli(['version', '--proxy', `127.0.0.1:${sidecar.ports.admin}`]);
    expect(text).toMatchObject({
      code: 0,
      stderr: '',
      stdout: `tsmesh ${cliVersion} (Node.js ${process.version}, ${process.platform}/${process.arch})\nsidecar 127.0.0.1:${sidecar.ports.admin}: ${proxyVersion} (Node.js ${process.version})\n`,
    });
    const json = await runCli(['version', '--proxy', String(sidecar.ports.admin), '-o', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).proxy).toEqual({ address: `127.0.0.1:${sidecar.ports.admin}`, component: 'proxy', version: proxyVersion, node: process.version, uptimeSeconds: expect.any(Number) });
  });

  it('the sidecar publishes tsmesh_build_info 1 once, whatever its number of event loops', async () => {
    const metrics = await get(sidecar.ports.health, '/metrics');
    const lines = metrics.split('\n').filter((line) => line.startsWith('tsmesh_build_info'));
    expect(lines).toEqual([`tsmesh_build_info{component="proxy",version="${proxyVersion}",node_version="${process.version}"} 1`]);
  });
});
