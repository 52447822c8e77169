import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import forge from 'node-forge';
import { loadConfig } from '../shared/config.js';
import { buildCertificate } from '../worker/certificate-builder.js';

const { publicKey, privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicExponent: 0x10001,
});
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const createdDate = 1_780_000_000;

function openssl(pem: string): string | undefined {
  try {
    return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // openssl not installed
    throw err;
  }
}

/** SHA-1 of the subjectPublicKey BIT STRING's contents (RFC 5280 4.2.1.2 method 1), hex. */
function expectedSki(): string {
  const der = publicKey.export({ type: 'pkcs1', format: 'der' });
  return createHash('sha1').update(der).digest('hex');
}

describe('certificate profiles', () => {
  test('aws (the default) issues a certificate with no extensions at all', () => {
    const pem = buildCertificate({ publicKeyPem, privateKey, createdDate });
    const x = new X509Certificate(pem);
    assert.equal(x.subject, 'C=US\nL=Seattle\nCN=ApiGateway');
    assert.equal(x.issuer, x.subject);
    assert.equal(x.ca, false);
    assert.equal(x.keyUsage, undefined);
    assert.ok(x.verify(publicKey));
    assert.ok(x.checkPrivateKey(privateKey));
    assert.equal(forge.pki.certificateFromPem(pem).extensions.length, 0);
    const text = openssl(pem);
    if (text !== undefined) {
      assert.match(text, /Version: 3 \(0x2\)/);
      assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
      assert.doesNotMatch(text, /X509v3 extensions/);
    }
    assert.equal(
      buildCertificate({ publicKeyPem, privateKey, createdDate, profile: 'aws' }).length,
      pem.length,
    );
  });

  test('modern adds basicConstraints CA:false, critical keyUsage digitalSignature, EKU clientAuth and an SKI', () => {
    const pem = buildCertificate({ publicKeyPem, privateKey, createdDate, profile: 'modern' });
    const x = new X509Certificate(pem);
    assert.equal(x.subject, 'C=US\nL=Seattle\nCN=ApiGateway');
    assert.equal(x.ca, false);
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2']); // Node names the EKU list keyUsage
    assert.ok(x.verify(publicKey), 'natively signed over the TBS with the extensions');
    assert.ok(x.checkPrivateKey(privateKey));
    assert.equal(Date.parse(x.validFrom), createdDate * 1000);
    assert.equal(Date.parse(x.validTo), (createdDate + 365 * 24 * 3600) * 1000);

    const ext = forge.pki.certificateFromPem(pem).extensions as {
      name: string;
      critical?: boolean;
      cA?: boolean;
      digitalSignature?: boolean;
      keyCertSign?: boolean;
      clientAuth?: boolean;
      serverAuth?: boolean;
      subjectKeyIdentifier?: string;
    }[];
    assert.deepEqual(
      ext.map((e) => e.name),
      ['basicConstraints', 'keyUsage', 'extKeyUsage', 'subjectKeyIdentifier'],
    );
    const [bc, ku, eku, ski] = ext;
    assert.equal(bc!.critical, true);
    assert.ok(!bc!.cA, 'CA:FALSE (the DER default, so encoded as an absent field)');
    assert.equal(ku!.critical, true);
    assert.equal(ku!.digitalSignature, true);
    assert.ok(!ku!.keyCertSign);
    assert.equal(eku!.clientAuth, true);
    assert.ok(!eku!.serverAuth);
    assert.equal(ski!.subjectKeyIdentifier, expectedSki());

    const text = openssl(pem);
    if (text !== undefined) {
      assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
      assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
      assert.match(text, /X509v3 Extended Key Usage:\s*\n\s+TLS Web Client Authentication\n/);
      const skiHex = expectedSki().toUpperCase().match(/../g)!.join(':');
      assert.match(text, new RegExp(`X509v3 Subject Key Identifier:\\s*\\n\\s+${skiHex}`));
    }
  });

  test('CERT_PROFILE defaults to aws, accepts modern and names itself when wrong', () => {
    assert.equal(loadConfig({}).certProfile, 'aws');
    assert.equal(loadConfig({ CERT_PROFILE: 'modern' }).certProfile, 'modern');
    assert.throws(() => loadConfig({ CERT_PROFILE: 'Modern' }), {
      name: 'ConfigError',
      message: 'invalid configuration: CERT_PROFILE must be one of aws, modern, got "Modern"',
    });
  });
});
