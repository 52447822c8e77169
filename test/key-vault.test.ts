import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { KeyVault } from '../shared/crypto/key-vault.js';

describe('KeyVault (AES-256-GCM envelope)', () => {
  const vault = new KeyVault([randomBytes(32).toString('base64')]);
  const secret = Buffer.from('a private key, in DER');
  const aad = 'clientcertificate/000000000000/us-east-1/abc123';

  /** The envelope with its tag part replaced. */
  const withTag = (envelope: string, tag: Buffer) => {
    const parts = envelope.split('.');
    parts[3] = tag.toString('base64url');
    return parts.join('.');
  };

  it('opens what it sealed, with a 16-byte tag', () => {
    const envelope = vault.encrypt(secret, aad);
    assert.equal(Buffer.from(envelope.split('.')[3]!, 'base64url').length, 16);
    assert.deepEqual(vault.decrypt(envelope, aad), secret);
  });

  it('refuses a truncated tag, even one that is a true prefix of the real tag', () => {
    const envelope = vault.encrypt(secret, aad);
    const tag = Buffer.from(envelope.split('.')[3]!, 'base64url');
    // Without a pinned length GCM checks only the bytes given: a 4-byte prefix is a 1-in-2^32 forgery.
    for (const bytes of [4, 8, 12, 15]) {
      assert.throws(
        () => vault.decrypt(withTag(envelope, tag.subarray(0, bytes)), aad),
        new RegExp(`${bytes}-byte authentication tag, not 16`),
        `${bytes}-byte tag`,
      );
    }
  });

  it('refuses a tag longer than 16 bytes and a wrong tag of the right length', () => {
    const envelope = vault.encrypt(secret, aad);
    const tag = Buffer.from(envelope.split('.')[3]!, 'base64url');
    assert.throws(() => vault.decrypt(withTag(envelope, Buffer.concat([tag, Buffer.from([0])])), aad));
    const flipped = Buffer.from(tag);
    flipped[0]! ^= 1;
    assert.throws(() => vault.decrypt(withTag(envelope, flipped), aad), /unable to authenticate/);
  });
});
