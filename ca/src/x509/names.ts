// Names as the mesh writes them, on the ASN.1 schema library alone (no @peculiar/x509) so that the
// sidecar's CSR path stays small: distinguished names (RFC 5280 4.1.2.4) and the subjectAltName
// extension (RFC 5280 4.2.1.6). The CA's certificates and the sidecar's CSRs both use these.
import { isIP } from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AttributeTypeAndValue,
  AttributeValue,
  Extension,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  id_ce_subjectAltName,
} from '@peculiar/asn1-x509';
import { OctetString } from '@peculiar/asn1-schema';

/** One entry of a subjectAltName extension. */
export type SubjectAltName =
  | { readonly type: 'uri'; readonly value: string }
  | { readonly type: 'dns'; readonly value: string }
  | { readonly type: 'ip'; readonly value: string }
  | { readonly type: 'email'; readonly value: string };

/** A distinguished name attribute; only O and CN are ever written by the mesh. */
export interface NameAttribute {
  readonly type: 'O' | 'CN';
  readonly value: string;
}

const ATTRIBUTE_OIDS: Record<NameAttribute['type'], string> = { O: '2.5.4.10', CN: '2.5.4.3' };

/** Encodes a Name, one attribute per RDN, values as UTF8String; an empty list gives the empty Name. */
export function encodeName(attributes: readonly NameAttribute[]): Buffer {
  const rdns = attributes.map(
    (a) =>
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({ type: ATTRIBUTE_OIDS[a.type], value: new AttributeValue({ utf8String: a.value }) }),
      ]),
  );
  return Buffer.from(AsnConvert.serialize(new Name(rdns)));
}

/** A DER Extension element; the value is the DER of the extension's own structure. */
export function encodeExtension(id: string, critical: boolean, value: ArrayBuffer): Buffer {
  return Buffer.from(AsnConvert.serialize(new Extension({ extnID: id, critical, extnValue: new OctetString(value) })));
}

/** The subjectAltName extension (non-critical unless asked: the subject is never empty of meaning). */
export function subjectAltNameExtension(names: readonly SubjectAltName[], critical = false): Buffer {
  const value = new SubjectAlternativeName(names.map(generalName));
  return encodeExtension(id_ce_subjectAltName, critical, AsnConvert.serialize(value));
}

function generalName(name: SubjectAltName): GeneralName {
  switch (name.type) {
    case 'email':
      return new GeneralName({ rfc822Name: name.value });
    case 'dns':
      return new GeneralName({ dNSName: name.value });
    case 'uri':
      return new GeneralName({ uniformResourceIdentifier: name.value });
    case 'ip':
      return new GeneralName({ iPAddress: canonicalIp(name.value) });
  }
}

/** The schema writes dotted IPv4 and hex-group IPv6; an IPv4 tail (::ffff:1.2.3.4) is rewritten as hex groups. */
function canonicalIp(ip: string): string {
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family !== 6) throw new TypeError(`"${ip}" is not an IP address`);
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}
