// The part of node-forge the CA and its client use: the ASN.1 codec, PEM and their helpers.
// `import forge from 'node-forge'` loads every forge module (ciphers, TLS, PKCS#12, SSH, ...), about
// 4 MiB of heap and code in every sidecar for code it never runs; forge's own modules register
// themselves on one shared object, so loading these few gives the same `forge.asn1` and `forge.pem`.
import { createRequire } from 'node:module';
import type Forge from 'node-forge';

const require = createRequire(import.meta.url);
const forge = require('node-forge/lib/forge') as typeof Forge;
require('node-forge/lib/asn1');
require('node-forge/lib/pem');

export default forge;
