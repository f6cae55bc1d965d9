// Interop of the sidecar's HTTP/2 path (h2.ts on tsmesh's own codec) with real peers: h2load,
// nghttp, curl and node:http2 as clients of node:http2 upstreams, nginx as an upstream, and
// grpc-js on both sides. Every peer is the real program; the sidecar runs in explicit-port mode.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { RunningProxy } from '../proxy.js';
import { TestMeshFile } from '../testing/mesh.js';
import { SERVICE_IP, SERVICE_PORT, startTestProxy } from '../testing/proxy.js';
import { eventually, listenH2, listenTcp, once, pause, payload, sha256, stablePort, type Listening } from '../testing/servers.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const { HTTP2_HEADER_STATUS } = http2.constants;

// ---- real programs: found where Debian puts them, or the test fails naming the package ----

const H2LOAD = { path: '/usr/bin/h2load', debian: 'nghttp2-client' };
const NGHTTP = { path: '/usr/bin/nghttp', debian: 'nghttp2-client' };
const CURL = { path: '/usr/bin/curl', debian: 'curl' };
const NGINX = { path: '/usr/sbin/nginx', debian: 'nginx-light' };

function program(p: { path: string; debian: string }): string {
  if (!existsSync(p.path)) throw new Error(`${p.path} is missing: install the Debian package ${p.debian}`);
  return p.path;
}

/** Child processes still running; killed in afterAll whatever happened. */
const children = new Set<ChildProcess>();
const work = mkdtempSync(join(tmpdir(), 'tsmesh-h2-interop-'));

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  rmSync(work, { recursive: true, force: true });
});

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

interface ToolRun {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Runs `file` to its end (killed after `timeoutMs`); throws with its output unless it exits 0. */
function run(file: string, args: readonly string[], timeoutMs = 20_000): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() };
      if (code === 0) return resolve(result);
      const tail = (s: string): string => s.slice(-2000);
      reject(new Error(`${file} ${args.join(' ')} exited with ${code ?? signal}\nstdout: ${tail(result.stdout.toString('latin1'))}\nstderr: ${tail(result.stderr)}`));
    });
  });
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// ---- node:http2 client helpers ----

interface Answer {
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
  readonly rstCode: number | undefined;
}

/** One stream on `session`: the request body (if any) written under backpressure, then optional trailers; resolves when it closes. */
function call(session: http2.ClientHttp2Session, path: string, init: { method?: string; headers?: http2.OutgoingHttpHeaders; body?: Buffer; trailers?: http2.OutgoingHttpHeaders } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const hasBody = init.body !== undefined || init.trailers !== undefined;
    const req = session.request(
      { ':method': init.method ?? (hasBody ? 'POST' : 'GET'), ':path': path, ...init.headers },
      { endStream: !hasBody, waitForTrailers: init.trailers !== undefined },
    );
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => resolve({ headers, body: Buffer.concat(chunks), trailers, rstCode: req.rstCode }));
    if (init.trailers) req.on('wantTrailers', () => req.sendTrailers(init.trailers!));
    if (hasBody) void writeAll(req, init.body ?? Buffer.alloc(0)).catch(reject);
  });
}

/** Writes `data` in 64 KiB chunks honouring backpressure, then ends. */
async function writeAll(stream: http2.Http2Stream, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; offset += 64 * KIB) {
    if (!stream.write(data.subarray(offset, offset + 64 * KIB))) await once(stream, 'drain', 30_000);
  }
  stream.end();
}

const sessions: http2.ClientHttp2Session[] = [];
async function connect(port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 1 * MIB } });
  session.on('error', () => undefined);
  sessions.push(session);
  await once(session, 'connect');
  return session;
}

afterAll(() => {
  for (const session of sessions.splice(0)) session.destroy();
});

// ---- node:http2 upstreams ----

interface Upload {
  readonly upstream: string;
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
}

interface NodeUpstream {
  readonly name: string;
  readonly listening: Listening<http2.Http2Server>;
  /** Streams served, by path without its query. */
  readonly hits: Map<string, number>;
}

/**
 * An upstream named `name`: `/name` answers the name; `/echo` streams the body back and ends with
 * trailers giving the bytes and sha256 it received; `/upload` reads the body and its trailers, then
 * answers them as JSON; `/blob?bytes=N` sends N bytes of payload(N). Every request body an /echo
 * or /upload stream received in full is added to `uploads`, in the order they complete.
 */
async function nodeUpstream(name: string, uploads: Upload[]): Promise<NodeUpstream> {
  const hits = new Map<string, number>();
  const listening = await listenH2((stream, headers) => {
    const [path = '', query = ''] = String(headers[':path']).split('?');
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/name') {
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-upstream': name });
      stream.end(name);
    } else if (path === '/echo') {
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'x-upstream': name }, { waitForTrailers: true });
      const hash = createHash('sha256');
      let bytes = 0;
      stream.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      stream.on('wantTrailers', () => {
        const digest = hash.digest('hex');
        uploads.push({ upstream: name, path, bytes, sha256: digest, trailers: undefined });
        stream.sendTrailers({ 'x-received-bytes': String(bytes), 'x-received-sha256': digest });
      });
      stream.pipe(stream);
    } else if (path === '/upload') {
      const chunks: Buffer[] = [];
      let trailers: http2.IncomingHttpHeaders | undefined;
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('end', () => {
        const upload: Upload = { upstream: name, path, bytes: Buffer.concat(chunks).length, sha256: sha256(chunks), trailers };
        uploads.push(upload);
        stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-upstream': name });
        stream.end(JSON.stringify(upload));
      });
    } else if (path === '/blob') {
      stream.resume();
      const bytes = Number(new URLSearchParams(query).get('bytes'));
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': bytes, 'x-upstream': name });
      stream.end(payload(bytes));
    } else {
      stream.resume();
      stream.respond({ ':status': 404 });
      stream.end(`no ${path} here\n`);
    }
  });
  return { name, listening, hits };
}

function hitsOn(upstreams: readonly NodeUpstream[], path: string): number[] {
  return upstreams.map((u) => u.hits.get(path) ?? 0);
}

describe('the sidecar between real HTTP/2 clients and three node:http2 upstreams (round-robin)', () => {
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let upstreams: NodeUpstream[];
  const uploads: Upload[] = [];
  let base: string;

  beforeAll(async () => {
    upstreams = await Promise.all(['a', 'b', 'c'].map((name) => nodeUpstream(name, uploads)));
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, loadBalancer: 'round-robin', endpoints: upstreams.map((u) => u.listening.port) }]);
    proxy = await startTestProxy(mesh.path);
    base = `http://127.0.0.1:${proxy.ports.outbound}`;
  });

  afterAll(async () => {
    for (const session of sessions.splice(0)) session.destroy();
    await proxy?.close();
    await Promise.all((upstreams ?? []).map((u) => u.listening.close()));
    mesh?.remove();
  });

  test('h2load: 3000 requests on 4 connections × 10 streams all succeed, 1000 on each upstream', async () => {
    const h2load = program(H2LOAD);
    const before = hitsOn(upstreams, '/name');
    const { stdout } = await run(h2load, ['-n', '3000', '-c', '4', '-m', '10', `${base}/name`], 30_000);
    const out = stdout.toString();
    expect(out).toMatch(/Application protocol: h2c/);
    expect(out).toMatch(/requests: 3000 total, 3000 started, 3000 done, 3000 succeeded, 0 failed, 0 errored, 0 timeout/);
    expect(out).toMatch(/status codes: 3000 2xx, 0 3xx, 0 4xx, 0 5xx/);
    // Each answer's body is its upstream's one-letter name: 3000 bytes of DATA in all.
    expect(out).toMatch(/\(3000\) data/);
    const after = hitsOn(upstreams, '/name');
    expect(after.map((n, i) => n - before[i]!)).toEqual([1000, 1000, 1000]);
  }, 40_000);

  test('nghttp: six URIs on one connection are six 200 streams, two per upstream', async () => {
    const nghttp = program(NGHTTP);
    const uris = Array.from({ length: 6 }, (_, i) => `${base}/name?n=${i}`);
    const { stdout } = await run(nghttp, ['-nv', ...uris]);
    const out = stdout.toString();
    // One TCP connection, six request streams on it.
    expect(out.match(/\] Connected/g)?.length).toBe(1);
    expect(out.match(/send HEADERS frame/g)?.length).toBe(6);
    const status = new Map<string, string>();
    const upstream = new Map<string, string>();
    for (const m of out.matchAll(/recv \(stream_id=(\d+)\) :status: (\d+)/g)) status.set(m[1]!, m[2]!);
    for (const m of out.matchAll(/recv \(stream_id=(\d+)\) x-upstream: (\w+)/g)) upstream.set(m[1]!, m[2]!);
    expect(status.size).toBe(6);
    expect([...status.values()]).toEqual(Array(6).fill('200'));
    expect([...upstream.keys()].sort()).toEqual([...status.keys()].sort());
    expect([...upstream.values()].sort()).toEqual(['a', 'a', 'b', 'b', 'c', 'c']);
    // Every stream ended with END_STREAM on its DATA frame.
    expect(out.match(/recv DATA frame <length=1, flags=0x01, stream_id=\d+>/g)?.length).toBe(6);
  });

  test('nghttp: a 1 MiB POST (-d file) is echoed back byte for byte', async () => {
    const nghttp = program(NGHTTP);
    const body = payload(1 * MIB);
    const file = join(work, 'nghttp-upload.bin');
    writeFileSync(file, body);
    const uploadsBefore = uploads.length;
    const { stdout } = await run(nghttp, ['-d', file, `${base}/echo`]);
    expect(stdout.length).toBe(body.length);
    expect(sha256(stdout)).toBe(sha256(body));
    expect(uploads.slice(uploadsBefore)).toEqual([{ upstream: expect.stringMatching(/^[abc]$/), path: '/echo', bytes: body.length, sha256: sha256(body), trailers: undefined }]);
  });

  test('nghttp: padded HEADERS and DATA frames (-b 255) of a 1 MiB POST are unpadded and echoed byte for byte', async () => {
    const nghttp = program(NGHTTP);
    const body = payload(1 * MIB);
    const file = join(work, 'nghttp-padded.bin');
    writeFileSync(file, body);
    const uploadsBefore = uploads.length;
    const { stdout } = await run(nghttp, ['-b', '255', '-d', file, `${base}/echo`]);
    expect(stdout.length).toBe(body.length);
    expect(sha256(stdout)).toBe(sha256(body));
    expect(uploads.slice(uploadsBefore)).toEqual([{ upstream: expect.stringMatching(/^[abc]$/), path: '/echo', bytes: body.length, sha256: sha256(body), trailers: undefined }]);
  });

  test('nghttp: a client with a 1023-byte stream window (-w 10) downloads 1 MiB whole', async () => {
    const nghttp = program(NGHTTP);
    const { stdout } = await run(nghttp, ['-w', '10', `${base}/blob?bytes=${1 * MIB}`]);
    expect(stdout.length).toBe(1 * MIB);
    expect(sha256(stdout)).toBe(sha256(payload(1 * MIB)));
  });

  test('curl --http2-prior-knowledge: a GET of /name and of a 2 MiB blob arrive whole over HTTP/2', async () => {
    const curl = program(CURL);
    const small = await run(curl, ['--http2-prior-knowledge', '-sS', '-D', '-', `${base}/name`]);
    const text = small.stdout.toString();
    expect(text).toMatch(/^HTTP\/2 200 ?\r\n/);
    expect(text).toMatch(/\r\nx-upstream: ([abc])\r\n(?:[^\r]*\r\n)*\r\n\1$/);

    const out = join(work, 'curl-blob.bin');
    const blob = await run(curl, ['--http2-prior-knowledge', '-sS', '-o', out, '-w', '%{http_code} %{http_version} %{size_download}', `${base}/blob?bytes=${2 * MIB}`]);
    expect(blob.stdout.toString()).toBe(`200 2 ${2 * MIB}`);
    expect(sha256(readFileSync(out))).toBe(sha256(payload(2 * MIB)));
  });

  test('curl --http2-prior-knowledge: a 3 MiB POST (--data-binary @file) is echoed back byte for byte', async () => {
    const curl = program(CURL);
    const body = payload(3 * MIB);
    const file = join(work, 'curl-upload.bin');
    const out = join(work, 'curl-echo.bin');
    writeFileSync(file, body);
    const uploadsBefore = uploads.length;
    const started = Date.now();
    const res = await run(curl, [
      '--http2-prior-knowledge', '-sS', '-H', 'content-type: application/octet-stream', '--data-binary', `@${file}`,
      '-o', out, '-w', '%{http_code} %{http_version} %{size_upload} %{size_download}', `${base}/echo`,
    ]);
    expect(res.stdout.toString()).toBe(`200 2 ${body.length} ${body.length}`);
    expect(sha256(readFileSync(out))).toBe(sha256(body));
    expect(uploads.slice(uploadsBefore)).toEqual([{ upstream: expect.stringMatching(/^[abc]$/), path: '/echo', bytes: body.length, sha256: sha256(body), trailers: undefined }]);
    // No stall waiting out a timer (e.g. curl's 1 s Expect: 100-continue wait) on loopback.
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('node:http2: a burst of 100 concurrent streams of mixed sizes (0 B to 2 MiB) is echoed whole on each stream', async () => {
    const sizes = [0, 1, 1000, 16 * KIB, 16 * KIB + 1, 64 * KIB - 1, 64 * KIB + 7, 256 * KIB, 1 * MIB, 2 * MIB - 1];
    const bodies = Array.from({ length: 100 }, (_, i) => {
      const size = sizes[i % sizes.length]!;
      // Distinct content per stream: a mixed-up relay cannot pass by accident.
      const body = Buffer.from(payload(size));
      if (size >= 4) body.writeUInt32BE(i, 0);
      return body;
    });
    const before = hitsOn(upstreams, '/echo');
    const session = await connect(proxy.ports.outbound);
    const answers = await Promise.all(bodies.map((body) => call(session, '/echo', { body })));
    for (const [i, answer] of answers.entries()) {
      const body = bodies[i]!;
      expect({ i, status: answer.headers[HTTP2_HEADER_STATUS], bytes: answer.body.length, sha: sha256(answer.body) }).toEqual({ i, status: 200, bytes: body.length, sha: sha256(body) });
      expect(answer.trailers).toEqual(expect.objectContaining({ 'x-received-bytes': String(body.length), 'x-received-sha256': sha256(body) }));
    }
    const spread = hitsOn(upstreams, '/echo').map((n, i) => n - before[i]!);
    expect(spread.sort()).toEqual([33, 33, 34]);
  }, 40_000);

  test('node:http2: trailers sent by the client after a 300 KiB body reach the upstream', async () => {
    const body = payload(300 * KIB);
    const session = await connect(proxy.ports.outbound);
    const answer = await call(session, '/upload', { body, trailers: { 'x-content-sha256': sha256(body), 'x-note': 'end of upload' } });
    expect(answer.headers[HTTP2_HEADER_STATUS]).toBe(200);
    const seen = JSON.parse(answer.body.toString()) as Upload;
    expect(seen.bytes).toBe(body.length);
    expect(seen.sha256).toBe(sha256(body));
    expect(seen.trailers).toEqual(expect.objectContaining({ 'x-content-sha256': sha256(body), 'x-note': 'end of upload' }));
  });

  test('node:http2: a request of headers then trailers (no DATA at all) reaches the upstream with its trailers', async () => {
    const session = await connect(proxy.ports.outbound);
    const answer = await call(session, '/upload', { trailers: { 'x-only': 'trailers' } });
    expect(answer.headers[HTTP2_HEADER_STATUS]).toBe(200);
    const seen = JSON.parse(answer.body.toString()) as Upload;
    expect(seen.bytes).toBe(0);
    expect(seen.trailers).toEqual(expect.objectContaining({ 'x-only': 'trailers' }));
  });
});

// ---- nginx as the upstream ----

const NGINX_BODY = 'hello from nginx\n';
/** nginx sends GOAWAY on a connection after this many requests. */
const NGINX_KEEPALIVE_REQUESTS = 100;

function nginxConfig(dir: string, port: number): string {
  return `# h2c (prior knowledge) upstream for h2-interop.test.ts
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  log_format interop '$connection $status $request_uri';
  access_log ${dir}/access.log interop;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests ${NGINX_KEEPALIVE_REQUESTS};
  server {
    listen 127.0.0.1:${port} http2;
    root ${dir}/www;
    location /dav/ {
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 16m;
    }
    location = /hello {
      add_header x-upstream nginx;
      return 200 "${NGINX_BODY.trimEnd()}\\n";
    }
  }
}
`;
}

interface Nginx {
  readonly child: ChildProcess;
  readonly port: number;
  readonly dir: string;
}

/**
 * nginx in the foreground, one process, on a port below the kernel's ephemeral range (stablePort:
 * nginx cannot listen on port 0 and tell us the port), tried again if that port was just taken.
 */
async function startNginx(dir: string): Promise<Nginx> {
  const nginx = program(NGINX);
  for (let attempt = 1; ; attempt++) {
    const port = await stablePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConfig(dir, port));
    const child = track(spawn(nginx, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off; master_process off;'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    let exited = false;
    child.once('exit', () => (exited = true));
    const up = await eventually(async () => (exited ? 'exited' : (await connects(port)) && 'up'), `nginx to listen on ${port}`, 10_000);
    if (up === 'up') return { child, port, dir };
    let log = '';
    try {
      log = readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      // no log yet
    }
    if (attempt >= 3 || !/Address already in use/.test(log + stderr)) throw new Error(`nginx did not start (attempt ${attempt}): ${stderr}\n${log}`);
  }
}

async function stopNginx(nginx: Nginx | undefined): Promise<void> {
  if (!nginx || nginx.child.exitCode !== null || nginx.child.signalCode !== null) return;
  const exited = once(nginx.child, 'exit', 5000).catch(() => undefined);
  nginx.child.kill('SIGKILL');
  await exited;
}

describe('the sidecar in front of nginx (h2c prior knowledge)', () => {
  let nginx: Nginx;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  const blob = payload(1 * MIB);

  beforeAll(async () => {
    const dir = join(work, 'nginx');
    mkdirSync(join(dir, 'www'), { recursive: true });
    writeFileSync(join(dir, 'www', 'blob.bin'), blob);
    nginx = await startNginx(dir);
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, endpoints: [nginx.port] }]);
    proxy = await startTestProxy(mesh.path);
  });

  afterAll(async () => {
    for (const session of sessions.splice(0)) session.destroy();
    await proxy?.close();
    await stopNginx(nginx);
    mesh?.remove();
  });

  test("answers 200 with nginx's body and headers", async () => {
    const session = await connect(proxy.ports.outbound);
    const answer = await call(session, '/hello');
    expect(answer.headers[HTTP2_HEADER_STATUS]).toBe(200);
    expect(answer.headers['x-upstream']).toBe('nginx');
    expect(answer.headers.server).toMatch(/^nginx/);
    expect(answer.body.toString()).toBe(NGINX_BODY);
  });

  test('downloads a 1 MiB static file with the right sha256, also 20 at once on one session', async () => {
    const session = await connect(proxy.ports.outbound);
    const one = await call(session, '/blob.bin');
    expect(one.headers[HTTP2_HEADER_STATUS]).toBe(200);
    expect(one.headers['content-length']).toBe(String(blob.length));
    expect(sha256(one.body)).toBe(sha256(blob));
    const many = await Promise.all(Array.from({ length: 20 }, () => call(session, '/blob.bin')));
    expect(many.map((a) => [a.headers[HTTP2_HEADER_STATUS], a.body.length, sha256(a.body)])).toEqual(Array(20).fill([200, blob.length, sha256(blob)]));
  });

  test('answers HEAD with the length and no body, and a Range request with 206 and the slice', async () => {
    const session = await connect(proxy.ports.outbound);
    const head = await call(session, '/blob.bin', { method: 'HEAD' });
    expect(head.headers[HTTP2_HEADER_STATUS]).toBe(200);
    expect(head.headers['content-length']).toBe(String(blob.length));
    expect(head.body.length).toBe(0);
    const range = await call(session, '/blob.bin', { headers: { range: 'bytes=1000-1999' } });
    expect(range.headers[HTTP2_HEADER_STATUS]).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 1000-1999/${blob.length}`);
    expect(range.body).toEqual(blob.subarray(1000, 2000));
  });

  test('uploads 3 MiB to nginx (WebDAV PUT, nginx reads the whole body) and reads it back with the same sha256', async () => {
    const body = payload(3 * MIB);
    const session = await connect(proxy.ports.outbound);
    const put = await call(session, '/dav/upload.bin', { method: 'PUT', body });
    expect(put.headers[HTTP2_HEADER_STATUS]).toBe(201);
    expect(sha256(readFileSync(join(nginx.dir, 'www', 'dav', 'upload.bin')))).toBe(sha256(body));
    const get = await call(session, '/dav/upload.bin');
    expect(get.headers[HTTP2_HEADER_STATUS]).toBe(200);
    expect(get.body.length).toBe(body.length);
    expect(sha256(get.body)).toBe(sha256(body));
  });

  test("passes nginx's own 404 through (not a proxy error)", async () => {
    const session = await connect(proxy.ports.outbound);
    const answer = await call(session, '/missing.html');
    expect(answer.headers[HTTP2_HEADER_STATUS]).toBe(404);
    expect(answer.headers['x-tsmesh-proxy-error']).toBeUndefined();
    expect(answer.body.toString()).toMatch(/<title>404 Not Found<\/title>[\s\S]*nginx/);
  });

  test('a POST nginx answers without reading its 1 MiB body gets the answer, and the session goes on', async () => {
    const session = await connect(proxy.ports.outbound);
    let timer: NodeJS.Timeout | undefined;
    const answer = await Promise.race([
      call(session, '/hello', { method: 'POST', body: payload(1 * MIB) }),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the POST to nginx did not finish within 10 s')), 10_000))),
    ]).finally(() => clearTimeout(timer));
    expect(answer.headers[HTTP2_HEADER_STATUS]).toBe(200);
    expect(answer.body.toString()).toBe(NGINX_BODY);
    const next = await call(session, '/hello');
    expect(next.headers[HTTP2_HEADER_STATUS]).toBe(200);
  });

  test(`serves 300 streams of one client session across nginx's GOAWAY every ${NGINX_KEEPALIVE_REQUESTS} requests`, async () => {
    const logFile = join(nginx.dir, 'access.log');
    const logged = (): string[] => readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    const before = logged().length;
    const session = await connect(proxy.ports.outbound);
    const statuses: Array<number | undefined> = [];
    const bodies = new Set<string>();
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => call(session, `/hello?round=${round}&i=${i}`)));
      for (const a of answers) {
        statuses.push(a.headers[HTTP2_HEADER_STATUS] as number | undefined);
        bodies.add(a.body.toString());
      }
    }
    expect(statuses).toEqual(Array(300).fill(200));
    expect([...bodies]).toEqual([NGINX_BODY]);
    const lines = await eventually(() => logged().length >= before + 300 && logged().slice(before), 'nginx to log 300 requests');
    expect(lines).toHaveLength(300);
    // nginx closed each upstream connection after 100 requests: the sidecar opened at least three.
    const connections = new Set(lines.map((l) => l.split(' ')[0]));
    expect(connections.size).toBeGreaterThanOrEqual(3);
    expect(lines.every((l) => l.split(' ')[1] === '200')).toBe(true);
  });
});

// ---- gRPC: grpc-js on both sides ----

const raw = (b: Buffer): Buffer => b;
function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return { path: `/tsmesh.interop.Interop/${name}`, requestStream, responseStream, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
}

/** A service of raw-bytes methods: no .proto file needed. */
const INTEROP = {
  Unary: method('Unary', false, false),
  Meta: method('Meta', false, false),
  Fail: method('Fail', false, false),
  Hang: method('Hang', false, false),
  Big: method('Big', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
} satisfies grpc.ServiceDefinition;

const MAX_MESSAGE = 8 * MIB;
const MESSAGE_LIMITS = { 'grpc.max_send_message_length': MAX_MESSAGE, 'grpc.max_receive_message_length': MAX_MESSAGE };

interface GrpcUpstream {
  readonly name: string;
  readonly server: grpc.Server;
  readonly port: number;
  readonly unaryCalls: () => number;
  /** Messages each ServerStream call has written so far. */
  readonly streamProgress: Array<{ written: number }>;
  /** Hang calls seen, and whether each was cancelled. */
  readonly hangs: Array<{ cancelled: boolean }>;
}

function startGrpcUpstream(name: string, options: grpc.ServerOptions = {}): Promise<GrpcUpstream> {
  let unary = 0;
  const streamProgress: Array<{ written: number }> = [];
  const hangs: Array<{ cancelled: boolean }> = [];
  const server = new grpc.Server({ ...MESSAGE_LIMITS, ...options });
  server.addService(INTEROP, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      unary++;
      callback(null, Buffer.concat([Buffer.from(`${name}:`), call.request]));
    },
    Meta: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const header = new grpc.Metadata();
      header.set('x-server', name);
      header.set('x-request-id-echo', String(call.metadata.get('x-request-id')[0] ?? ''));
      const blob = call.metadata.get('x-blob-bin')[0];
      header.set('x-blob-bin', Buffer.from(Buffer.isBuffer(blob) ? blob : Buffer.alloc(0)).reverse());
      call.sendMetadata(header);
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'done');
      trailer.set('x-checksum-bin', createHash('sha256').update(call.request).digest());
      callback(null, Buffer.from(`meta from ${name}`), trailer);
    },
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const metadata = new grpc.Metadata();
      metadata.set('x-missing', 'widget-42');
      metadata.set('x-detail-bin', Buffer.from([0, 1, 2, 250, 255]));
      callback({ code: grpc.status.NOT_FOUND, details: 'widget 42 not found', metadata });
    },
    Hang: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const seen = { cancelled: false };
      hangs.push(seen);
      const timer = setTimeout(() => callback(null, Buffer.from('too late')), 10_000);
      call.on('cancelled', () => {
        seen.cancelled = true;
        clearTimeout(timer);
      });
    },
    Big: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-received-bytes', String(call.request.length));
      trailer.set('x-received-sha256', sha256(call.request));
      callback(null, Buffer.from(call.request).reverse(), trailer);
    },
    ServerStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const { count, size } = JSON.parse(call.request.toString()) as { count: number; size: number };
      const progress = { written: 0 };
      streamProgress.push(progress);
      void (async () => {
        for (let i = 0; i < count; i++) {
          if (call.cancelled) return;
          const message = Buffer.alloc(size, i & 0xff);
          message.writeUInt32BE(i, 0);
          progress.written++;
          if (!call.write(message)) await once(call, 'drain', 30_000);
        }
        call.end();
      })().catch(() => undefined);
    },
    ClientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      let count = 0;
      let sum = 0;
      let ordered = true;
      call.on('data', (m: Buffer) => {
        const n = m.readUInt32BE(0);
        if (n !== count) ordered = false;
        count++;
        sum += n;
      });
      call.on('end', () => callback(null, Buffer.from(JSON.stringify({ count, sum, ordered }))));
    },
    Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (m: Buffer) => call.write(m));
      call.on('end', () => call.end());
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) return reject(error);
      resolve({ name, server, port, unaryCalls: () => unary, streamProgress, hangs });
    });
  });
}

interface UnaryOutcome {
  readonly error: grpc.ServiceError | null;
  readonly response: Buffer | undefined;
  readonly metadata: grpc.Metadata | undefined;
  readonly status: grpc.StatusObject;
}

function unary(client: grpc.Client, m: grpc.MethodDefinition<Buffer, Buffer>, request: Buffer, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<UnaryOutcome> {
  return new Promise((resolve) => {
    let error: grpc.ServiceError | null = null;
    let response: Buffer | undefined;
    let header: grpc.Metadata | undefined;
    const c = client.makeUnaryRequest(m.path, raw, raw, request, metadata, options, (e, r) => {
      error = e;
      response = r;
    });
    c.on('metadata', (md: grpc.Metadata) => (header = md));
    c.on('status', (status: grpc.StatusObject) => resolve({ error, response, metadata: header, status }));
  });
}

describe('the sidecar between a grpc-js client and three grpc-js servers', () => {
  let servers: GrpcUpstream[];
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let target: string;
  const clients: grpc.Client[] = [];
  /** A client on its own connection (grpc-js shares subchannels between clients otherwise). */
  const newClient = (): grpc.Client => {
    const client = new grpc.Client(target, grpc.credentials.createInsecure(), { ...MESSAGE_LIMITS, 'grpc.use_local_subchannel_pool': 1 });
    clients.push(client);
    return client;
  };
  let client: grpc.Client;

  beforeAll(async () => {
    servers = await Promise.all(['g1', 'g2', 'g3'].map((name) => startGrpcUpstream(name)));
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName: 'grpc', endpoints: servers.map((s) => s.port) }]);
    proxy = await startTestProxy(mesh.path);
    target = `127.0.0.1:${proxy.ports.outbound}`;
    client = newClient();
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await proxy?.close();
    for (const s of servers ?? []) s.server.forceShutdown();
    mesh?.remove();
  });

  test('300 unary calls on one channel are answered, 100 by each server', async () => {
    const before = servers.map((s) => s.unaryCalls());
    const outcomes: UnaryOutcome[] = [];
    for (let batch = 0; batch < 6; batch++) {
      outcomes.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => unary(client, INTEROP.Unary, Buffer.from(`call ${batch * 50 + i}`))))));
    }
    expect(outcomes.map((o) => o.status.code)).toEqual(Array(300).fill(grpc.status.OK));
    outcomes.forEach((o, i) => expect(o.response?.toString()).toMatch(new RegExp(`^g[123]:call ${i}$`)));
    expect(servers.map((s, i) => s.unaryCalls() - before[i]!)).toEqual([100, 100, 100]);
  });

  test('metadata crosses both ways: request metadata in, header and trailing metadata out (text and -bin)', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', 'req-7');
    metadata.set('x-blob-bin', Buffer.from([1, 2, 3, 0, 255]));
    const outcome = await unary(client, INTEROP.Meta, Buffer.from('meta please'), metadata);
    expect(outcome.status.code).toBe(grpc.status.OK);
    expect(outcome.response?.toString()).toMatch(/^meta from g[123]$/);
    expect(outcome.metadata?.get('x-request-id-echo')).toEqual(['req-7']);
    expect(outcome.metadata?.get('x-server')).toEqual([outcome.response!.toString().slice('meta from '.length)]);
    expect(outcome.metadata?.get('x-blob-bin')).toEqual([Buffer.from([255, 0, 3, 2, 1])]);
    expect(outcome.status.metadata.get('x-trailer')).toEqual(['done']);
    expect(outcome.status.metadata.get('x-checksum-bin')).toEqual([createHash('sha256').update('meta please').digest()]);
  });

  test('a NOT_FOUND status with its message and trailing metadata is passed through', async () => {
    const outcome = await unary(client, INTEROP.Fail, Buffer.from('widget 42'));
    expect(outcome.error?.code).toBe(grpc.status.NOT_FOUND);
    expect(outcome.status.code).toBe(grpc.status.NOT_FOUND);
    expect(outcome.status.details).toBe('widget 42 not found');
    expect(outcome.status.metadata.get('x-missing')).toEqual(['widget-42']);
    expect(outcome.status.metadata.get('x-detail-bin')).toEqual([Buffer.from([0, 1, 2, 250, 255])]);
    expect(outcome.response).toBeUndefined();
  });

  test('a deadline that passes ends the call DEADLINE_EXCEEDED, cancels it on the server, and the channel goes on', async () => {
    const hangsBefore = servers.map((s) => s.hangs.length);
    const started = Date.now();
    const outcome = await unary(client, INTEROP.Hang, Buffer.from('wait'), new grpc.Metadata(), { deadline: Date.now() + 300 });
    const took = Date.now() - started;
    expect(outcome.status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    const hang = await eventually(() => servers.flatMap((s, i) => s.hangs.slice(hangsBefore[i])).at(0), 'the server to get the call');
    await eventually(() => hang.cancelled, 'the server call to be cancelled');
    const after = await unary(client, INTEROP.Unary, Buffer.from('still there?'));
    expect(after.status.code).toBe(grpc.status.OK);
    expect(after.response?.toString()).toMatch(/^g[123]:still there\?$/);
  });

  test('a 4 MiB message each way arrives intact (sha256 checked on both ends)', async () => {
    const request = payload(4 * MIB);
    const outcome = await unary(client, INTEROP.Big, request);
    expect(outcome.status.code).toBe(grpc.status.OK);
    expect(outcome.status.metadata.get('x-received-bytes')).toEqual([String(request.length)]);
    expect(outcome.status.metadata.get('x-received-sha256')).toEqual([sha256(request)]);
    expect(outcome.response?.length).toBe(request.length);
    expect(sha256(outcome.response!)).toBe(sha256(Buffer.from(request).reverse()));
  });

  test('server streaming: 1000 messages arrive in order, then OK', async () => {
    const call = client.makeServerStreamRequest(INTEROP.ServerStream.path, raw, raw, Buffer.from(JSON.stringify({ count: 1000, size: 100 })));
    const indexes: number[] = [];
    call.on('data', (m: Buffer) => indexes.push(m.length === 100 ? m.readUInt32BE(0) : -1));
    const status = await once<grpc.StatusObject>(call, 'status', 20_000);
    expect(status.code).toBe(grpc.status.OK);
    expect(indexes).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  test('client streaming: 1000 messages are all received, in order, and summed', async () => {
    const result = new Promise<{ error: grpc.ServiceError | null; response: Buffer | undefined }>((resolve) => {
      const call = client.makeClientStreamRequest(INTEROP.ClientStream.path, raw, raw, (error, response) => resolve({ error, response }));
      void (async () => {
        for (let i = 0; i < 1000; i++) {
          const m = Buffer.alloc(64);
          m.writeUInt32BE(i, 0);
          if (!call.write(m)) await once(call, 'drain', 20_000);
        }
        call.end();
      })();
    });
    const { error, response } = await result;
    expect(error).toBeNull();
    expect(JSON.parse(response!.toString())).toEqual({ count: 1000, sum: (999 * 1000) / 2, ordered: true });
  });

  test('bidi streaming: 500 messages are echoed back in order', async () => {
    const call = client.makeBidiStreamRequest(INTEROP.Bidi.path, raw, raw);
    const echoed: Buffer[] = [];
    call.on('data', (m: Buffer) => echoed.push(m));
    const status = once<grpc.StatusObject>(call, 'status', 20_000);
    const sent: Buffer[] = [];
    for (let i = 0; i < 500; i++) {
      const m = Buffer.from(`message ${i} `.padEnd(32 + (i % 200), '.'));
      sent.push(m);
      if (!call.write(m)) await once(call, 'drain', 20_000);
    }
    call.end();
    expect((await status).code).toBe(grpc.status.OK);
    expect(echoed.map((m) => m.toString())).toEqual(sent.map((m) => m.toString()));
  });

  test('a slow reader (paused 1 s) of 2000 × 16 KiB messages gets them all in order; meanwhile another channel is answered within 1 s', async () => {
    const COUNT = 2000;
    const SIZE = 16 * KIB;
    const progressBefore = servers.map((s) => s.streamProgress.length);
    const call = client.makeServerStreamRequest(INTEROP.ServerStream.path, raw, raw, Buffer.from(JSON.stringify({ count: COUNT, size: SIZE })));
    const indexes: number[] = [];
    let intact = true;
    let resumed: () => void = () => undefined;
    const pauseOver = new Promise<void>((resolve) => (resumed = resolve));
    let writtenAtResume = -1;
    call.on('data', (m: Buffer) => {
      const i = m.readUInt32BE(0);
      if (m.length !== SIZE || m[SIZE - 1] !== (i & 0xff)) intact = false;
      indexes.push(i);
      if (indexes.length === 1) {
        call.pause();
        setTimeout(() => {
          const progress = servers.flatMap((s, n) => s.streamProgress.slice(progressBefore[n]));
          writtenAtResume = progress[0]?.written ?? -1;
          resumed();
          call.resume();
        }, 1000);
      }
    });
    const status = once<grpc.StatusObject>(call, 'status', 30_000);

    // While the stream is held, unary calls on another connection to the sidecar keep being answered.
    const other = newClient();
    const latencies: number[] = [];
    const statuses: grpc.status[] = [];
    let paused = true;
    void pauseOver.then(() => (paused = false));
    await eventually(() => indexes.length >= 1, 'the first streamed message', 10_000);
    while (paused) {
      const started = Date.now();
      const outcome = await unary(other, INTEROP.Unary, Buffer.from('ping'), new grpc.Metadata(), { deadline: Date.now() + 5000 });
      latencies.push(Date.now() - started);
      statuses.push(outcome.status.code);
      await pause(50);
    }

    expect((await status).code).toBe(grpc.status.OK);
    expect(indexes).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(intact).toBe(true);
    expect(latencies.length).toBeGreaterThanOrEqual(5);
    expect(statuses.every((s) => s === grpc.status.OK)).toBe(true);
    expect(Math.max(...latencies)).toBeLessThan(1000);
    // The pause held the server back (flow control end to end): it had not written everything.
    expect(writtenAtResume).toBeGreaterThan(0);
    expect(writtenAtResume).toBeLessThan(COUNT);
  }, 40_000);
});

describe('the sidecar in front of grpc-js servers that age out their connections (max_connection_age)', () => {
  let servers: GrpcUpstream[];
  /** A TCP relay in front of each server, counting the connections the sidecar opens. */
  let relays: Array<Listening<net.Server>>;
  let mesh: TestMeshFile;
  let proxy: RunningProxy;
  let client: grpc.Client;

  beforeAll(async () => {
    // Each server sends GOAWAY on every connection 300 ms after it opened, and closes it 1 s later.
    const aging = { 'grpc.max_connection_age_ms': 300, 'grpc.max_connection_age_grace_ms': 1000 };
    servers = await Promise.all(['g1', 'g2'].map((name) => startGrpcUpstream(name, aging)));
    relays = await Promise.all(
      servers.map((s) =>
        listenTcp((socket) => {
          const upstream = net.connect(s.port, '127.0.0.1');
          upstream.on('error', () => socket.destroy());
          upstream.once('close', () => socket.destroy());
          socket.once('close', () => upstream.destroy());
          socket.pipe(upstream).pipe(socket);
        }),
      ),
    );
    mesh = new TestMeshFile([{ name: 'svc', clusterIP: SERVICE_IP, port: SERVICE_PORT, portName: 'grpc', endpoints: relays.map((r) => r.port) }]);
    proxy = await startTestProxy(mesh.path);
    client = new grpc.Client(`127.0.0.1:${proxy.ports.outbound}`, grpc.credentials.createInsecure(), { ...MESSAGE_LIMITS, 'grpc.use_local_subchannel_pool': 1 });
  });

  afterAll(async () => {
    client?.close();
    await proxy?.close();
    await Promise.all((relays ?? []).map((r) => r.close()));
    for (const s of servers ?? []) s.server.forceShutdown();
    mesh?.remove();
  });

  test('unary calls for 2 s across many upstream GOAWAYs all succeed, and a stream open across one completes', async () => {
    const stream = client.makeServerStreamRequest(INTEROP.ServerStream.path, raw, raw, Buffer.from(JSON.stringify({ count: 200, size: 64 })));
    const streamed: number[] = [];
    stream.on('data', (m: Buffer) => streamed.push(m.readUInt32BE(0)));
    const streamStatus = once<grpc.StatusObject>(stream, 'status', 20_000);
    const failures: string[] = [];
    let calls = 0;
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => unary(client, INTEROP.Unary, Buffer.from(`c${calls + i}`))));
      outcomes.forEach((o, i) => {
        if (o.status.code !== grpc.status.OK || !/^g[12]:c\d+$/.test(o.response?.toString() ?? '') || !o.response!.toString().endsWith(`c${calls + i}`)) failures.push(`${o.status.code} ${o.status.details}`);
      });
      calls += 10;
      await pause(20);
    }
    expect(calls).toBeGreaterThan(100);
    expect(failures).toEqual([]);
    expect((await streamStatus).code).toBe(grpc.status.OK);
    expect(streamed).toEqual(Array.from({ length: 200 }, (_, i) => i));
    // The servers did age the connections out: the sidecar had to open new ones, several per server.
    expect(relays.map((r) => r.accepted).every((n) => n >= 3)).toBe(true);
  });
});
