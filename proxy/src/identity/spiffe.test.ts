import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from '@jest/globals';
import { IDENTITY_ERRORS } from '../errors.js';
import { parseSpiffeId, parseSubjectAltNames, peerIdentityFromCertificate, spiffeIdFor } from './spiffe.js';
import { opensslCertificate } from './testing/certs.js';

const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';

describe('spiffeIdFor', () => {
  it('builds spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>', () => {
    expect(spiffeIdFor('cluster.local', 'shop', 'web')).toBe(WEB_ID);
    expect(spiffeIdFor('example_org', 'ns-1', 'build.bot')).toBe('spiffe://example_org/ns/ns-1/sa/build.bot');
  });

  it.each([
    ['Cluster.local', 'shop', 'web'],
    ['cluster.local:8080', 'shop', 'web'],
    ['cluster.local', 'Shop', 'web'],
    ['cluster.local', 'shop.x', 'web'],
    ['cluster.local', 'shop', 'web/x'],
    ['cluster.local', 'shop', ''],
  ])('refuses invalid parts (%s, %s, %s)', (trustDomain, namespace, serviceAccount) => {
    expect(() => spiffeIdFor(trustDomain, namespace, serviceAccount)).toThrow(TypeError);
  });
});

describe('parseSpiffeId', () => {
  it('parses a tsmesh SPIFFE ID', () => {
    expect(parseSpiffeId(WEB_ID)).toEqual({ ok: true, value: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' } });
    expect(parseSpiffeId('spiffe://td/ns/a/sa/b.c-d')).toEqual({ ok: true, value: { trustDomain: 'td', namespace: 'a', serviceAccount: 'b.c-d' } });
  });

  it.each([
    ['another scheme', 'https://cluster.local/ns/shop/sa/web', 'scheme'],
    ['an uppercase scheme', 'SPIFFE://cluster.local/ns/shop/sa/web', 'scheme'],
    ['a port', 'spiffe://cluster.local:443/ns/shop/sa/web', 'port'],
    ['userinfo', 'spiffe://user@cluster.local/ns/shop/sa/web', 'userinfo'],
    ['a query', 'spiffe://cluster.local/ns/shop/sa/web?x=1', 'query'],
    ['a fragment', 'spiffe://cluster.local/ns/shop/sa/web#x', 'fragment'],
    ['percent-encoding', 'spiffe://cluster.local/ns/shop/sa/w%65b', 'percent'],
    ['an uppercase trust domain', 'spiffe://Cluster.local/ns/shop/sa/web', 'trust domain'],
    ['an empty trust domain', 'spiffe:///ns/shop/sa/web', 'trust domain'],
    ['no path', 'spiffe://cluster.local', 'path'],
    ['a trailing slash', 'spiffe://cluster.local/ns/shop/sa/web/', 'path'],
    ['an extra segment', 'spiffe://cluster.local/ns/shop/sa/web/x', 'path'],
    ['swapped keys', 'spiffe://cluster.local/sa/web/ns/shop', 'path'],
    ['an empty segment', 'spiffe://cluster.local/ns//sa/web', 'namespace'],
    ['dot segments', 'spiffe://cluster.local/ns/../sa/web', 'namespace'],
    ['an invalid namespace', 'spiffe://cluster.local/ns/Shop/sa/web', 'namespace'],
    ['an invalid service account', 'spiffe://cluster.local/ns/shop/sa/-web', 'service account'],
    ['a namespace longer than 63', `spiffe://cluster.local/ns/${'a'.repeat(64)}/sa/web`, 'namespace'],
    ['an overlong ID', `spiffe://cluster.local/ns/shop/sa/${'a'.repeat(2100)}`, 'longer'],
  ])('refuses %s', (_what, uri, reason) => {
    const result = parseSpiffeId(uri);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(IDENTITY_ERRORS.SPIFFE_ID);
    expect(result.error.message).toContain(reason);
  });
});

describe('parseSubjectAltNames', () => {
  it('splits Node\'s format into typed entries', () => {
    expect(parseSubjectAltNames(`URI:${WEB_ID}, DNS:web.shop, IP Address:10.0.0.1, email:a@b, othername:<unsupported>`)).toEqual([
      { type: 'URI', value: WEB_ID },
      { type: 'DNS', value: 'web.shop' },
      { type: 'IP Address', value: '10.0.0.1' },
      { type: 'email', value: 'a@b' },
      { type: 'othername', value: '<unsupported>' },
    ]);
    expect(parseSubjectAltNames('')).toEqual([]);
  });

  it('unquotes a JSON-quoted value, so a comma inside it cannot forge a second entry', () => {
    expect(parseSubjectAltNames(`URI:"spiffe://evil/x\\u002c URI:${WEB_ID}", DNS:a`)).toEqual([
      { type: 'URI', value: `spiffe://evil/x, URI:${WEB_ID}` },
      { type: 'DNS', value: 'a' },
    ]);
    expect(parseSubjectAltNames('DNS:"a\\"b, c"')).toEqual([{ type: 'DNS', value: 'a"b, c' }]);
  });

  it.each([
    ['an unterminated quote', 'URI:"spiffe://x'],
    ['text after a quoted value', 'URI:"a"b, DNS:c'],
    ['a stray quote in an unquoted value', 'DNS:a"b'],
    ['an entry without a type', 'URI:a, b'],
    ['an empty type', ':a'],
    ['a trailing separator', 'DNS:a, '],
  ])('gives up on %s', (_what, text) => {
    expect(parseSubjectAltNames(text)).toBeUndefined();
  });
});

describe('peerIdentityFromCertificate', () => {
  it('reads the only URI SAN of a leaf of our trust domain', () => {
    const { cert } = opensslCertificate({ sans: [`URI.1 = ${WEB_ID}`] });
    expect(peerIdentityFromCertificate(cert, 'cluster.local')).toEqual({
      ok: true,
      value: { spiffeId: WEB_ID, trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' },
    });
  });

  it('accepts other SAN types beside the SPIFFE ID', () => {
    const { cert } = opensslCertificate({ sans: ['DNS.1 = web.shop.svc', `URI.1 = ${WEB_ID}`, 'IP.1 = 10.0.0.1'] });
    const result = peerIdentityFromCertificate(cert, 'cluster.local');
    expect(result.ok && result.value.spiffeId).toBe(WEB_ID);
  });

  it('accepts what tls.TLSSocket#getPeerCertificate returns', () => {
    const { cert } = opensslCertificate({ sans: [`URI.1 = ${WEB_ID}`] });
    const peer = { raw: cert.raw, subjectaltname: cert.subjectAltName } as unknown as PeerCertificate;
    expect(peerIdentityFromCertificate(peer, 'cluster.local').ok).toBe(true);
  });

  it.each([
    ['no certificate', () => undefined, IDENTITY_ERRORS.PEER_NO_CERTIFICATE],
    ['the empty object of a peer that sent nothing', () => ({}) as PeerCertificate, IDENTITY_ERRORS.PEER_NO_CERTIFICATE],
    ['a CA certificate', () => opensslCertificate({ ca: true, sans: [`URI.1 = ${WEB_ID}`] }).cert, IDENTITY_ERRORS.PEER_CA_CERTIFICATE],
    ['a leaf without SANs', () => opensslCertificate({}).cert, IDENTITY_ERRORS.PEER_SAN],
    ['a leaf with only a DNS SAN', () => opensslCertificate({ sans: ['DNS.1 = web'] }).cert, IDENTITY_ERRORS.PEER_SAN],
    [
      'two URI SANs',
      () => opensslCertificate({ sans: [`URI.1 = ${WEB_ID}`, 'URI.2 = spiffe://cluster.local/ns/shop/sa/admin'] }).cert,
      IDENTITY_ERRORS.PEER_SAN,
    ],
    [
      'a URI whose comma would forge a second SAN',
      () => opensslCertificate({ sans: [`URI.1 = spiffe://evil/x, URI:${WEB_ID}`] }).cert,
      IDENTITY_ERRORS.SPIFFE_ID,
    ],
    ['a URI that is not a SPIFFE ID', () => opensslCertificate({ sans: ['URI.1 = https://web.shop/'] }).cert, IDENTITY_ERRORS.SPIFFE_ID],
    [
      'a SPIFFE ID of another trust domain',
      () => opensslCertificate({ sans: ['URI.1 = spiffe://other.domain/ns/shop/sa/web'] }).cert,
      IDENTITY_ERRORS.PEER_TRUST_DOMAIN,
    ],
  ])('refuses %s', (_what, make, code) => {
    const result = peerIdentityFromCertificate(make(), 'cluster.local');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe(code);
  });
});
