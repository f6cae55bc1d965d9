// Secret (v1) of type kubernetes.io/tls: a certificate chain and its private key, which HTTPS
// listeners of `tsmesh gateway` present. Checked at load time (PEM that parses, a key that fits the
// certificate), so a bad Secret is refused with the file, never found at the first handshake.
// Other Secret types are kept without interpretation. Never log or dump the data (redactSecret).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describeValue, messageOf, type FieldChecker } from '../fields.js';
import type { KubeObject } from '../types.js';
import type { KindDefinition } from './kind.js';

export const TLS_SECRET_TYPE = 'kubernetes.io/tls';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface MeshSecret {
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  /** For a kubernetes.io/tls Secret: the PEM chain and key; undefined for other types. */
  readonly tls: { readonly cert: string; readonly key: string; readonly dnsNames: readonly string[] } | undefined;
}

export const secretKind: KindDefinition<MeshSecret> = {
  apiVersion: 'v1',
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize(check, meta, raw) {
    const type = check.string(raw['type'], 'type') ?? 'Opaque';
    const data = check.object(raw['data'], 'data') ?? {};
    const stringData = check.object(raw['stringData'], 'stringData') ?? {};
    const read = (key: string): string | undefined => {
      const plain = stringData[key];
      if (plain !== undefined) return check.string(plain, `stringData[${JSON.stringify(key)}]`, true);
      const encoded = data[key];
      if (encoded === undefined) return undefined;
      if (typeof encoded !== 'string' || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(encoded)) {
        return check.fail(`data[${JSON.stringify(key)}]`, 'must be base64 (use stringData for plain text)');
      }
      return Buffer.from(encoded, 'base64').toString('utf8');
    };
    let tls: MeshSecret['tls'];
    if (type === TLS_SECRET_TYPE) {
      const cert = read('tls.crt');
      const key = read('tls.key');
      if (cert === undefined) check.fail('data["tls.crt"]', 'required in a kubernetes.io/tls Secret');
      if (key === undefined) check.fail('data["tls.key"]', 'required in a kubernetes.io/tls Secret');
      if (cert !== undefined && key !== undefined) tls = checkPair(check, cert, key);
    }
    return Object.freeze({ namespace: meta.namespace, name: meta.name, type, tls });
  },
};

function checkPair(check: FieldChecker, cert: string, key: string): MeshSecret['tls'] {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    return check.fail('data["tls.crt"]', `is not a PEM certificate (${messageOf(error)})`);
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) return check.fail('data["tls.key"]', 'does not belong to the certificate in tls.crt');
  } catch (error) {
    return check.fail('data["tls.key"]', `is not a PEM private key (${messageOf(error)})`);
  }
  const dnsNames = (x509.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (dnsNames.length === 0) check.warn('data["tls.crt"]', `has no DNS subjectAltName (subject ${describeValue(x509.subject)}): clients that check the name will refuse it`);
  return Object.freeze({ cert, key, dnsNames: Object.freeze(dnsNames) });
}

/** A copy of `object` with a Secret's `data` and `stringData` values replaced, for dumps and logs. */
export function redactSecret(object: KubeObject): KubeObject {
  if (object.kind !== 'Secret') return object;
  const hide = (value: unknown): unknown =>
    typeof value === 'object' && value !== null ? Object.fromEntries(Object.keys(value).map((k) => [k, '(redacted)'])) : value;
  const copy: KubeObject = { ...object };
  // `kubectl apply` keeps the whole object, data included, in this annotation.
  const annotations = object.metadata.annotations;
  if (annotations && Object.hasOwn(annotations, LAST_APPLIED)) copy.metadata = { ...object.metadata, annotations: { ...annotations, [LAST_APPLIED]: '(redacted)' } };
  if ('data' in copy) copy['data'] = hide(copy['data']);
  if ('stringData' in copy) copy['stringData'] = hide(copy['stringData']);
  return copy;
}
