import { createPrivateKey } from 'node:crypto';
import type { ClientCertificateStore } from './client-certificate-store.js';
import { keyAad, type KeyVault } from './crypto/key-vault.js';
import { NotFoundError } from './errors.js';

/** TLS client options for `https.request`, `tls.connect` or undici's `connect`. */
export interface ClientTlsOptions {
  /** The private key, PKCS#8 PEM. Keep it in memory only: never log, store or send it. */
  key: string;
  /** The certificate, PEM (the record's `pemEncodedCertificate`). */
  cert: string;
}

export interface ClientTlsRequest {
  store: ClientCertificateStore;
  vault: KeyVault;
  accountId: string;
  region: string;
  /** The client certificate id. */
  id: string;
}

/**
 * The key and certificate with which the component that calls integration backends presents client
 * certificate `id` of `accountId`/`region`, as API Gateway does. It decrypts the sealed private key
 * (AES-GCM, bound to this record by its AAD, so another record's key can never come back under this
 * id). For in-process use only: nothing may expose the result over HTTP.
 *
 * @throws NotFoundError when there is no such certificate; an Error when the key cannot be decrypted
 *   (wrong or missing master key, tampered record).
 */
export async function clientTlsOptions(req: ClientTlsRequest): Promise<ClientTlsOptions> {
  const t = { accountId: req.accountId, region: req.region };
  const [sealed, record] = await Promise.all([
    req.store.getEncryptedKey(t, req.id),
    req.store.get(t, req.id),
  ]);
  // Both reads are needed; a delete between them leaves one of the two missing.
  if (sealed === undefined || record === undefined) {
    throw new NotFoundError('Invalid Client Certificate identifier specified');
  }
  const der = req.vault.decrypt(sealed, keyAad(req.accountId, req.region, req.id));
  try {
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    return {
      key: key.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: record.pemEncodedCertificate,
    };
  } finally {
    der.fill(0);
  }
}
