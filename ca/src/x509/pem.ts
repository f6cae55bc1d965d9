// PEM text (RFC 7468 section 2) around DER: how certificates and CSRs leave the CA and the sidecar.
// Encoding only; the CA reads hostile PEM with @peculiar/x509's PemConverter (csr.ts).

/** `-----BEGIN <label>-----`, the base64 DER in 64-character lines, `-----END <label>-----` and a newline. */
export function toPem(der: Uint8Array | ArrayBuffer, label: string): string {
  const bytes = der instanceof ArrayBuffer ? Buffer.from(der) : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const body = bytes.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}
