import { describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchMetrics, Scraper } from './scraper.js';

const peers = 'reporter="source",source_workload="client",source_namespace="demo",destination_service="greeter",destination_workload="greeter",destination_namespace="demo"';
const body = (ok: number): string => `tsmesh_requests_total{${peers},response_code="200",grpc_status="0"} ${ok}\n`;

describe('the scraper', () => {
  test('shows nothing after one scrape, then each interval\'s rate; a sidecar that fails is down with its reason', async () => {
    let now = 0;
    let count = 0;
    const bodies: Record<string, () => Promise<string>> = {
      a: () => Promise.resolve(body((count += 20))),
      b: () => Promise.reject(new Error('connect ECONNREFUSED')),
    };
    const scraper = new Scraper({
      targets: [{ name: 'client', address: 'a' }, { name: 'gone', address: 'b' }],
      intervalMs: 1000,
      fetch: (address) => (bodies[address] as () => Promise<string>)(),
      now: () => now,
    });
    await scraper.tick();
    expect(scraper.current().edges).toEqual([]);
    now += 2000;
    await scraper.tick();
    now += 2000;
    await scraper.tick();
    const view = scraper.current();
    expect(view.edges.map((e) => [e.source, e.destination, e.rps])).toEqual([['client.demo', 'greeter.demo', 10]]);
    expect(view.targets).toEqual([
      { name: 'client', address: 'a', up: true },
      { name: 'gone', address: 'b', up: false, error: 'connect ECONNREFUSED' },
    ]);
    expect(view.times).toEqual([2, 4]);
    expect(view.history['greeter.demo']?.rps).toEqual([10, 10]);
  });

  test('keeps at most historyPoints points; a workload that appears later is padded with nulls', async () => {
    let now = 0;
    let n = 0;
    const scraper = new Scraper({
      targets: [{ name: 'x', address: 'x' }],
      intervalMs: 1000,
      historyPoints: 3,
      fetch: () => {
        n++;
        const other = n >= 4 ? `tsmesh_requests_total{reporter="source",source_workload="client",source_namespace="demo",destination_workload="late",destination_namespace="demo",response_code="200"} ${n}\n` : '';
        return Promise.resolve(body(n * 10) + other);
      },
      now: () => (now += 1000),
    });
    for (let i = 0; i < 6; i++) await scraper.tick();
    const view = scraper.current();
    expect(view.times).toHaveLength(3);
    expect(view.history['greeter.demo']?.rps).toHaveLength(3);
    expect(view.history['late.demo']?.rps.map((v) => v === null)).toEqual([false, false, false]);
  });

  test('fetchMetrics reads /metrics over TCP and refuses a non-200 answer', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/metrics') res.end(body(7));
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      expect(await fetchMetrics(`127.0.0.1:${port}`, 1000)).toBe(body(7));
      server.removeAllListeners('request');
      server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => res.writeHead(503).end());
      await expect(fetchMetrics(`127.0.0.1:${port}`, 1000)).rejects.toThrow('GET /metrics answered 503');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
