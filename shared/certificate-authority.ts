import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import forge from 'node-forge';
import { VALIDITY_SECONDS } from './client-certificate.js';
import { ConfigError } from './config.js';

/** The CA that signs certificates when CERT_ISSUER=ca. Held by workers only; never logged or stored. */
export interface CertificateAuthority {
  /** The CA certificate, PEM (the first of CA_CERT_FILE). */
  certPem: string;
  /**
   * The certificates presented after an issued one, PEM, in order: the CA certificate when it is an
   * intermediate, then each further issuer CA_CERT_FILE holds that is not self-signed (a backend has the
   * root). Empty for a root CA.
   */
  chainPem: string[];
  /** DER of the CA certificate's subject Name, byte for byte: the issuer Name of what it signs. */
  subjectDer: Buffer;
  /** The CA's subject key identifier: the authority key identifier of what it signs. */
  keyIdentifier: Buffer;
  /** The CA's private key (RSA or EC). */
  privateKey: KeyObject;
  /** Digest the signature uses: SHA-256, or SHA-384/512 for P-384/P-521 keys. */
  hash: 'sha256' | 'sha384' | 'sha512';
  /** OID of the signature algorithm (sha256WithRSAEncryption, ecdsa-with-SHA256, ...). */
  signatureOid: string;
  /** Whether the AlgorithmIdentifier carries NULL parameters (RSA) or none (ECDSA, RFC 5758). */
  nullParameters: boolean;
  /** When the CA certificate expires, epoch ms. */
  notAfter: number;
  /** CA_PUBLIC_URL: issued certificates name the CRL and OCSP responder under it; absent: they name none. */
  publicUrl?: string;
}

const EC_HASH: Record<string, { hash: 'sha256' | 'sha384' | 'sha512'; oid: string }> = {
  prime256v1: { hash: 'sha256', oid: '1.2.840.10045.4.3.2' },
  secp384r1: { hash: 'sha384', oid: '1.2.840.10045.4.3.3' },
  secp521r1: { hash: 'sha512', oid: '1.2.840.10045.4.3.4' },
};
const SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
const KEY_USAGE = '2.5.29.15';
const BASIC_CONSTRAINTS = '2.5.29.19';

/** The TBSCertificate's fields, located in a parsed certificate. */
function tbsFields(der: Buffer) {
  // Bit strings stay as they are (forge would otherwise try to parse the public key bits as ASN.1).
  const fromDer = forge.asn1.fromDer as unknown as (
    bytes: string,
    options: { decodeBitStrings: boolean },
  ) => forge.asn1.Asn1;
  const cert = fromDer(der.toString('binary'), { decodeBitStrings: false });
  const tbs = (cert.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
  // version [0] is optional (absent in v1 certificates): the subject follows serial, signature, issuer, validity.
  const v = tbs[0]!.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? 1 : 0;
  const extensions = tbs.find((f) => f.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && f.type === 3);
  return { subject: tbs[v + 4]!, spki: tbs[v + 5]!, extensions };
}

/** An extension's DER value (inside its OCTET STRING) parsed, bit strings left as they are; undefined when absent. */
function extensionValue(fields: ReturnType<typeof tbsFields>, oid: string): forge.asn1.Asn1 | undefined {
  for (const ext of ((fields.extensions?.value as forge.asn1.Asn1[] | undefined)?.[0]?.value as
    forge.asn1.Asn1[] | undefined) ?? []) {
    const parts = ext.value as forge.asn1.Asn1[];
    if (forge.asn1.derToOid(parts[0]!.value as string) !== oid) continue;
    const fromDer = forge.asn1.fromDer as unknown as (
      bytes: string,
      options: { decodeBitStrings: boolean },
    ) => forge.asn1.Asn1;
    return fromDer(parts[parts.length - 1]!.value as string, { decodeBitStrings: false });
  }
  return undefined;
}

/** Whether basicConstraints says CA:TRUE (RFC 5280 4.2.1.9: `cA BOOLEAN DEFAULT FALSE` comes first). */
function basicConstraintsCa(fields: ReturnType<typeof tbsFields>): boolean {
  const first = (extensionValue(fields, BASIC_CONSTRAINTS)?.value as forge.asn1.Asn1[] | undefined)?.[0];
  return first?.type === forge.asn1.Type.BOOLEAN && first.value !== '\x00';
}

/**
 * Whether the keyUsage extension (RFC 5280 4.2.1.3) lets the key sign certificates: true when the
 * extension is absent (no restriction), else whether its keyCertSign bit (bit 5) is set.
 */
function keyUsageAllowsCertSign(fields: ReturnType<typeof tbsFields>): boolean {
  const usage = extensionValue(fields, KEY_USAGE);
  if (!usage) return true;
  // A BIT STRING: its first byte counts the unused bits, then the named bits from the most significant.
  const bits = usage.value as string;
  return bits.length > 1 && (bits.charCodeAt(1) & 0x04) !== 0;
}

/** The subject key identifier extension's value, or RFC 5280's method 1 (SHA-1 of the public key bits). */
function keyIdentifierOf(fields: ReturnType<typeof tbsFields>): Buffer {
  for (const ext of ((fields.extensions?.value as forge.asn1.Asn1[] | undefined)?.[0]?.value as
    forge.asn1.Asn1[] | undefined) ?? []) {
    const parts = ext.value as forge.asn1.Asn1[];
    if (forge.asn1.derToOid(parts[0]!.value as string) !== SUBJECT_KEY_IDENTIFIER) continue;
    const octets = parts[parts.length - 1]!.value as string;
    return Buffer.from(forge.asn1.fromDer(octets).value as string, 'binary');
  }
  const bits = (fields.spki.value as forge.asn1.Asn1[])[1]!.value as string;
  return createHash('sha1')
    .update(Buffer.from(bits.slice(1), 'binary'))
    .digest();
}

/**
 * Checks a CA certificate and key and prepares them for signing. Refuses (ConfigError naming the
 * variable) a certificate that is not a CA, one whose keyUsage extension leaves out keyCertSign, one
 * outside its validity at `now`, a key that does not match the certificate, and a key that is neither
 * RSA nor EC P-256/384/521.
 *
 * @param files the file names, for the messages only.
 * @param now epoch ms.
 */
export function certificateAuthorityFrom(
  certPem: string,
  keyPem: string,
  files: { certFile: string; keyFile: string },
  now = Date.now(),
): CertificateAuthority {
  let x509: X509Certificate;
  let issuers: X509Certificate[];
  try {
    const blocks = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [
      certPem,
    ];
    [x509, ...issuers] = blocks.map((b) => new X509Certificate(b)) as [X509Certificate, ...X509Certificate[]];
  } catch (err) {
    throw new ConfigError(
      `CA_CERT_FILE ${files.certFile} is not a PEM certificate: ${(err as Error).message}`,
    );
  }
  // An intermediate followed by its issuers: each must have signed the one before it.
  [x509, ...issuers].forEach((c, i) => {
    const next = issuers[i];
    if (next && !(c.checkIssued(next) && c.verify(next.publicKey))) {
      throw new ConfigError(
        `CA_CERT_FILE ${files.certFile}: certificate ${i + 2} (${next.subject.replace(/\n/g, ', ')}) did not issue certificate ${i + 1} (${c.subject.replace(/\n/g, ', ')}); list the signing CA first, then each issuer in order`,
      );
    }
  });
  const selfSigned = (c: X509Certificate) => c.checkIssued(c) && c.verify(c.publicKey);
  const chainPem = [x509, ...issuers].filter((c) => !selfSigned(c)).map((c) => c.toString().trim());
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (err) {
    throw new ConfigError(
      `CA_KEY_FILE ${files.keyFile} is not an unencrypted PEM private key: ${(err as Error).message}`,
    );
  }
  const fields = tbsFields(x509.raw);
  // Before x509.ca, which (OpenSSL's X509_check_ca) is false both without CA:TRUE and for a CA:TRUE
  // certificate whose keyUsage leaves out keyCertSign: the message says which.
  if (basicConstraintsCa(fields) && !keyUsageAllowsCertSign(fields)) {
    throw new ConfigError(
      `CA_CERT_FILE ${files.certFile} may not sign certificates: its keyUsage extension does not include keyCertSign`,
    );
  }
  if (!x509.ca) {
    throw new ConfigError(
      `CA_CERT_FILE ${files.certFile} is not a CA certificate (its basicConstraints do not say CA:TRUE)`,
    );
  }
  const notBefore = Date.parse(x509.validFrom);
  const notAfter = Date.parse(x509.validTo);
  if (notAfter < now) {
    throw new ConfigError(`CA_CERT_FILE ${files.certFile} expired on ${new Date(notAfter).toISOString()}`);
  }
  if (notBefore > now) {
    throw new ConfigError(
      `CA_CERT_FILE ${files.certFile} is not valid before ${new Date(notBefore).toISOString()}`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new ConfigError(`CA_KEY_FILE ${files.keyFile} is not the key of CA_CERT_FILE ${files.certFile}`);
  }
  let alg: { hash: 'sha256' | 'sha384' | 'sha512'; oid: string; nullParameters: boolean };
  if (privateKey.asymmetricKeyType === 'rsa') {
    alg = { hash: 'sha256', oid: forge.pki.oids.sha256WithRSAEncryption!, nullParameters: true };
  } else if (
    privateKey.asymmetricKeyType === 'ec' &&
    EC_HASH[privateKey.asymmetricKeyDetails?.namedCurve ?? '']
  ) {
    const ec = EC_HASH[privateKey.asymmetricKeyDetails!.namedCurve!]!;
    alg = { ...ec, nullParameters: false };
  } else {
    const detail = privateKey.asymmetricKeyDetails?.namedCurve;
    throw new ConfigError(
      `CA_KEY_FILE ${files.keyFile}: a ${privateKey.asymmetricKeyType}${detail ? ` ${detail}` : ''} key cannot sign here; use an RSA or an EC P-256, P-384 or P-521 key`,
    );
  }
  return {
    certPem: x509.toString(),
    chainPem,
    subjectDer: Buffer.from(forge.asn1.toDer(fields.subject).getBytes(), 'binary'),
    keyIdentifier: keyIdentifierOf(fields),
    privateKey,
    hash: alg.hash,
    signatureOid: alg.oid,
    nullParameters: alg.nullParameters,
    notAfter,
  };
}

/** Reads CA_CERT_FILE and CA_KEY_FILE and checks them ({@link certificateAuthorityFrom}). */
export function readCertificateAuthority(
  certFile: string,
  keyFile: string,
  now = Date.now(),
): CertificateAuthority {
  const read = (name: string, file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `${name} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  };
  return certificateAuthorityFrom(
    read('CA_CERT_FILE', certFile),
    read('CA_KEY_FILE', keyFile),
    { certFile, keyFile },
    now,
  );
}

/** Whether certificates issued at `now` would outlive the CA (they then fail verification after it expires). */
export function outlivesCa(ca: CertificateAuthority, now = Date.now()): boolean {
  return ca.notAfter < now + VALIDITY_SECONDS * 1000;
}
