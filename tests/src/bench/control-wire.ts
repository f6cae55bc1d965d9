// A stand-in sidecar that speaks the distribution protocol but does not parse: mTLS with its own
// workload certificate, one `POST /v1/mesh/stream`, and an ack as soon as a whole snapshot line has
// arrived (its version is read from the line's first bytes). With it, the time until N sidecars have
// a change measures the control plane's fan-out alone, not N snapshot parses on a 2-core machine.
import { connect as connectHttp2, type ClientHttp2Session } from 'node:http2';
import { connect as connectTls, type SecureContext } from 'node:tls';
import { MESH_STREAM_PATH, NDJSON_CONTENT_TYPE, POD_NAME_HEADER, PROTOCOL_HEADER, PROTOCOL_VERSION } from '@tsmesh/common';

const VERSION_IN_PREFIX = /^\{"type":"snapshot","version":"([^"]+)"/;

export class WireReceiver {
  private session: ClientHttp2Session | undefined;
  private prefix = '';
  private version: string | undefined;
  private readonly listeners = new Set<(version: string) => void>();

  constructor(
    private readonly addr: { host: string; port: number },
    private readonly context: SecureContext,
    private readonly podName: string,
  ) {}

  /** Resolves with the first snapshot's version once it has arrived whole. */
  start(): Promise<string> {
    return new Promise((resolve, reject) => {
      const { host, port } = this.addr;
      const session = connectHttp2(`https://${host}:${port}`, {
        // The chain is verified against the trust bundle; the control plane's SPIFFE ID is not checked here.
        createConnection: () => connectTls({ host, port, secureContext: this.context, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }),
      });
      this.session = session;
      session.on('error', reject);
      const stream = session.request({
        ':method': 'POST',
        ':path': MESH_STREAM_PATH,
        'content-type': NDJSON_CONTENT_TYPE,
        [PROTOCOL_HEADER]: PROTOCOL_VERSION,
        [POD_NAME_HEADER]: this.podName,
      });
      stream.on('error', reject);
      stream.on('response', (headers) => {
        if (headers[':status'] !== 200) reject(new Error(`the control plane answered ${String(headers[':status'])}`));
      });
      const first = (version: string): void => {
        this.listeners.delete(first);
        resolve(version);
      };
      this.listeners.add(first);
      stream.on('data', (chunk: Buffer) => {
        let from = 0;
        for (;;) {
          // Only the first bytes of a line are kept: enough for its version.
          if (this.prefix.length < 64) this.prefix += chunk.subarray(from, from + 64).toString('latin1');
          const newline = chunk.indexOf(10, from);
          if (newline < 0) return;
          this.lineDone(stream);
          from = newline + 1;
          if (from >= chunk.length) return;
        }
      });
    });
  }

  current(): string | undefined {
    return this.version;
  }

  subscribe(listener: (version: string) => void): void {
    this.listeners.add(listener);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.session === undefined || this.session.closed) return resolve();
      this.session.close(() => resolve());
    });
  }

  private lineDone(stream: NodeJS.WritableStream): void {
    const version = VERSION_IN_PREFIX.exec(this.prefix)?.[1];
    this.prefix = '';
    if (version === undefined) return;
    this.version = version;
    stream.write(`${JSON.stringify({ type: 'ack', version })}\n`);
    for (const listener of this.listeners) listener(version);
  }
}
