// A relay run inside a pod's network namespace: listens on a Unix socket (the file system is shared
// with the host) and joins each connection to a TCP port of the pod, so that the dashboard, in the
// host's namespace, can scrape a sidecar's :15020 the demo's private bridge does not route to.
// Usage: node relay-main.js SOCKET_PATH PORT (prints "ready" once listening).
import { chmodSync, rmSync } from 'node:fs';
import net from 'node:net';

const [socketPath, portText] = process.argv.slice(2);
const port = Number(portText);
if (!socketPath || !(port >= 1 && port <= 65535)) {
  console.error('usage: relay-main.js SOCKET_PATH PORT');
  process.exit(2);
}
rmSync(socketPath, { force: true });
const server = net.createServer((downstream) => {
  const upstream = net.connect(port, '127.0.0.1');
  downstream.pipe(upstream).pipe(downstream);
  const close = (): void => {
    downstream.destroy();
    upstream.destroy();
  };
  downstream.on('error', close);
  upstream.on('error', close);
});
server.listen(socketPath, () => {
  chmodSync(socketPath, 0o666);
  console.log('ready');
});
const stop = (): void => {
  server.close();
  rmSync(socketPath, { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
