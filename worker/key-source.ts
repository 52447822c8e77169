import { generateKeyPair, type KeyObject } from 'node:crypto';
import type { WorkClass } from '../shared/scheduler.js';

export interface RsaKey {
  publicKeyPem: string;
  privateKey: KeyObject;
}

export const RSA_BITS = 2048;

/**
 * One new RSA-2048 key (e = 65537) from native OpenSSL, on the libuv thread pool: the event loop is
 * never blocked. This is the call node-forge's `rsa.generateKeyPair` delegates to when it is allowed
 * to use native code; calling it directly avoids forge's round trip through its pure-JS key objects
 * and rules out forge's pure-JS fallback (seconds per key).
 */
export function generateRsaKey(bits = RSA_BITS): Promise<RsaKey> {
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 }, (err, publicKey, privateKey) => {
      if (err) return reject(err);
      resolve({ publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string, privateKey });
    });
  });
}

/** Where the processor takes keys from: straight from OpenSSL, or a pool of pre-generated ones. */
export interface KeySource {
  /**
   * A new key for a job of class `cls` (default interactive: a caller waits for it) of an account with
   * `inFlight` interactive jobs waiting or running before it (default 0).
   */
  take(cls?: WorkClass, inFlight?: number): Promise<RsaKey>;
  close(): Promise<void>;
}

export const directKeySource: KeySource = {
  take: () => generateRsaKey(),
  close: async () => {},
};
