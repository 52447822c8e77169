import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';

type Data = string | ArrayBuffer | ArrayBufferView;

const bytes = (d: Data): Buffer | string =>
  typeof d === 'string'
    ? d
    : ArrayBuffer.isView(d)
      ? Buffer.from(d.buffer, d.byteOffset, d.byteLength)
      : Buffer.from(d);

/**
 * SHA-256 (or HMAC-SHA-256 when given a secret) from node:crypto, in the shape `@smithy/signature-v4`
 * expects of its `sha256` constructor.
 */
export class NodeSha256 {
  private readonly h: Hash | Hmac;

  constructor(secret?: Data) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }

  update(data: Data): void {
    this.h.update(bytes(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
}

/** Lower-case hex SHA-256 of `data`. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
