import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { buildCertificate, randomSerialHex } from '../worker/certificate-builder.js';
import { generateRsaKey, type RsaKey } from '../worker/key-source.js';
import { newClientCertificateId, CLIENT_CERTIFICATE_ID } from '../shared/ids.js';

const CREATED = 1_780_000_000; // 2026-05-28T20:26:40Z

describe('certificate builder', () => {
  let key: RsaKey;
  let pem: string;
  let x509: X509Certificate;
  before(async () => {
    key = await generateRsaKey();
    pem = buildCertificate({ ...key, createdDate: CREATED });
    x509 = new X509Certificate(pem);
  });

  it('is self-signed by its own key with sha256WithRSAEncryption', () => {
    assert.ok(x509.verify(x509.publicKey));
    assert.ok(x509.checkIssued(x509));
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem }).toString();
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(text, /Version: 3 \(0x2\)/);
  });

  it('has issuer = subject = C=US, L=Seattle, CN=ApiGateway as PrintableStrings', () => {
    assert.equal(x509.subject, 'C=US\nL=Seattle\nCN=ApiGateway');
    assert.equal(x509.issuer, x509.subject);
    const asn1 = execFileSync('openssl', ['asn1parse'], { input: pem }).toString();
    assert.equal((asn1.match(/PRINTABLESTRING\s+:(US|Seattle|ApiGateway)\n/g) ?? []).length, 6);
    assert.doesNotMatch(asn1, /UTF8STRING/);
  });

  it('is valid from createdDate for exactly 365 days', () => {
    assert.equal(Date.parse(x509.validFrom), CREATED * 1000);
    assert.equal(Date.parse(x509.validTo) - Date.parse(x509.validFrom), 365 * 86_400_000);
  });

  it('carries the RSA-2048 public key with exponent 65537', () => {
    const jwk = x509.publicKey.export({ format: 'jwk' });
    assert.equal(jwk.e, 'AQAB');
    assert.equal(x509.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.ok(x509.publicKey.equals(createPublicKey(key.publicKeyPem)));
  });

  it('has no extensions at all', () => {
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem }).toString();
    assert.doesNotMatch(text, /X509v3 extensions/);
    assert.equal(x509.keyUsage, undefined);
    assert.equal(x509.ca, false);
  });

  it('has a random positive serial of 64 bits at most', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const s = new X509Certificate(buildCertificate({ ...key, createdDate: CREATED })).serialNumber;
      assert.ok(BigInt(`0x${s}`) > 0n);
      assert.ok(BigInt(`0x${s}`) < 2n ** 64n);
      serials.add(s);
    }
    assert.equal(serials.size, 5);
  });

  it('encodes serials as minimal positive DER integers', () => {
    assert.equal(randomSerialHex(Buffer.from('8000000000000001', 'hex')), '008000000000000001');
    assert.equal(randomSerialHex(Buffer.from('007f000000000001', 'hex')), '7f000000000001');
    assert.equal(randomSerialHex(Buffer.from('0080000000000001', 'hex')), '0080000000000001');
    assert.equal(randomSerialHex(Buffer.from('0000000000000000', 'hex')), '00');
    const pemHigh = buildCertificate({ ...key, createdDate: CREATED, serialHex: '00ffffffffffffffff' });
    assert.equal(new X509Certificate(pemHigh).serialNumber, 'FFFFFFFFFFFFFFFF');
  });

  it('is PEM with 64-character lines joined by CRLF and no trailing newline', () => {
    assert.ok(pem.startsWith('-----BEGIN CERTIFICATE-----\r\n'));
    assert.ok(pem.endsWith('\r\n-----END CERTIFICATE-----'));
    const lines = pem.split('\r\n');
    assert.ok(!pem.replace(/\r\n/g, '').includes('\n'));
    const body = lines.slice(1, -1);
    for (const line of body.slice(0, -1)) assert.equal(line.length, 64);
    assert.ok(body.at(-1)!.length <= 64);
  });
});

describe('client certificate ids', () => {
  it('are 6 characters of [a-z0-9] and vary', () => {
    const ids = new Set(Array.from({ length: 2000 }, newClientCertificateId));
    for (const id of ids) assert.match(id, CLIENT_CERTIFICATE_ID);
    assert.ok(ids.size > 1990);
    const chars = new Set([...ids].join(''));
    assert.equal(chars.size, 36);
  });
});
