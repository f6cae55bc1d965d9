// node:http for ES modules, without undici. An ES module `import ... from 'node:http'` builds the
// module's namespace by reading every export, and node:http's lazy `WebSocket`, `CloseEvent` and
// `MessageEvent` getters then load Node's whole undici bundle (fetch and WebSocket): 10 MiB of RSS
// in a sidecar that never uses either (cli/src/commands/proxy-modules.test.ts proves it stays
// out). require() reads only what is used. Type-only imports from 'node:http' cost nothing.
import { createRequire } from 'node:module';

export const nodeHttp = createRequire(import.meta.url)('node:http') as typeof import('node:http');
