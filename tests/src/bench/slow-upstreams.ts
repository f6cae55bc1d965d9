// The balancers benchmark's replicas (dist/bench/slow-upstreams.js, its own process): replica I
// listens on the I-th `--ports` entry (HTTP/2 with prior knowledge) and the I-th `--h1-ports`
// entry (HTTP/1.1), answering a fixed body, each counting its requests and adding the
// delay the benchmark sets for it. A plain HTTP/1.1 control port answers `GET /counts` (the
// requests of every replica so far, a JSON array) and `POST /delay?replica=I&ms=N` (from now on,
// replica I answers N ms late; 0 for at once).
import http from 'node:http';
import http2 from 'node:http2';
import { parseArgs } from 'node:util';

/** Same length for every replica, so none is favoured by its response size. */
const REPLICA_BODY = (i: number): string => `hello from replica ${i}\n`;

function main(): void {
  const { values } = parseArgs({ options: { ports: { type: 'string' }, 'h1-ports': { type: 'string' }, control: { type: 'string' } }, strict: true });
  const ports = (values.ports ?? '').split(',').filter(Boolean).map(Number);
  const h1Ports = (values['h1-ports'] ?? '').split(',').filter(Boolean).map(Number);
  const control = Number(values.control);
  if (ports.length === 0 || [...ports, ...h1Ports].some((p) => !Number.isInteger(p)) || h1Ports.length !== ports.length || !Number.isInteger(control)) {
    console.error('slow-upstreams: --ports P1,P2,..., --h1-ports (as many) and --control PORT are required');
    process.exit(2);
  }
  const counts = ports.map(() => 0);
  const delays = ports.map(() => 0);
  ports.forEach((port, i) => {
    const answerAfterDelay = (answer: () => void): void => {
      counts[i] = (counts[i] ?? 0) + 1;
      const delay = delays[i] ?? 0;
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    };
    const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1024 } });
    h2.on('stream', (stream) => {
      stream.on('error', () => undefined);
      answerAfterDelay(() => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(REPLICA_BODY(i + 1));
      });
    });
    const h1 = http.createServer({ keepAliveTimeout: 300_000 }, (req, res) => {
      req.resume();
      answerAfterDelay(() => {
        res.setHeader('content-type', 'text/plain');
        res.end(REPLICA_BODY(i + 1));
      });
    });
    h2.listen(port, '127.0.0.1');
    h1.listen(h1Ports[i], '127.0.0.1');
  });
  http
    .createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://control');
      if (req.method === 'GET' && url.pathname === '/counts') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(counts));
        return;
      }
      if (req.method === 'POST' && url.pathname === '/delay') {
        const replica = Number(url.searchParams.get('replica'));
        const ms = Number(url.searchParams.get('ms'));
        if (!Number.isInteger(replica) || replica < 0 || replica >= ports.length || !(ms >= 0)) {
          res.statusCode = 400;
          res.end(`replica must be 0..${ports.length - 1} and ms >= 0\n`);
          return;
        }
        delays[replica] = ms;
        res.end('ok\n');
        return;
      }
      res.statusCode = 404;
      res.end();
    })
    .listen(control, '127.0.0.1');
}

main();
