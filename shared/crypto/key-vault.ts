// shared/crypto/: private keys at rest: the AES-256-GCM key vault and loading the master key.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** GCM's full authentication tag; the only length the vault writes or accepts. */
const TAG_BYTES = 16;

/**
 * AES-256-GCM envelope for private keys at rest.
 *
 * Format: `v1.<keyId>.<iv>.<tag>.<ciphertext>` (base64url parts). The key id (first 8 bytes of the
 * SHA-256 of the master key, hex) lets a vault hold the current key and older ones, so MASTER_KEY can
 * be rotated: new records use the current key, old ones stay readable. The additional authenticated
 * data binds a ciphertext to its record, so one record's key cannot be swapped into another.
 */
export class KeyVault {
  private readonly keys = new Map<string, Buffer>();
  readonly currentKeyId: string;

  /** @param masterKeys base64 of 32 bytes each; the first encrypts, all decrypt. */
  constructor(masterKeys: string[]) {
    if (masterKeys.length === 0) throw new Error('KeyVault needs at least one master key');
    for (const k of masterKeys) {
      const raw = Buffer.from(k, 'base64');
      if (raw.length !== 32) throw new Error('a master key must be 32 bytes');
      this.keys.set(KeyVault.keyId(raw), raw);
    }
    this.currentKeyId = KeyVault.keyId(Buffer.from(masterKeys[0]!, 'base64'));
  }

  static keyId(raw: Buffer): string {
    return createHash('sha256').update(raw).digest('hex').slice(0, 16);
  }

  encrypt(plaintext: Buffer, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, iv, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [
      'v1',
      this.currentKeyId,
      iv.toString('base64url'),
      tag.toString('base64url'),
      ct.toString('base64url'),
    ].join('.');
  }

  decrypt(envelope: string, aad: string): Buffer {
    const [version, keyId, iv, tag, ct] = envelope.split('.');
    if (version !== 'v1' || !keyId || !iv || !tag || ct === undefined)
      throw new Error('malformed key envelope');
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`key envelope was sealed with unknown master key ${keyId}`);
    // GCM accepts tags as short as 4 bytes unless told otherwise, and a short tag is far easier to forge:
    // every envelope this vault writes has a 16-byte tag, so nothing else is accepted.
    const authTag = Buffer.from(tag, 'base64url');
    if (authTag.length !== TAG_BYTES) {
      throw new Error(`key envelope has a ${authTag.length}-byte authentication tag, not ${TAG_BYTES}`);
    }
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(authTag);
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
  }

  /** Whether this vault holds the master key with id `keyId` (see {@link envelopeKeyId}). */
  hasKey(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  /** Ids of the master keys this vault holds, the current one first. */
  get keyIds(): string[] {
    return [this.currentKeyId, ...[...this.keys.keys()].filter((k) => k !== this.currentKeyId)];
  }

  /** Which master key sealed an envelope (for rotation tooling). */
  static envelopeKeyId(envelope: string): string | undefined {
    return envelope.split('.')[1];
  }
}

/** The additional authenticated data of a record's key envelope. */
export function keyAad(accountId: string, region: string, id: string): string {
  return `clientcertificate/${accountId}/${region}/${id}`;
}
