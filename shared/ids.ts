import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const CLIENT_CERTIFICATE_ID = /^[a-z0-9]{6}$/;

/** A new client certificate id: 6 characters of [a-z0-9], as API Gateway makes them. */
export function newClientCertificateId(): string {
  let id = '';
  for (let i = 0; i < 6; i++) id += ALPHABET[randomInt(ALPHABET.length)];
  return id;
}
