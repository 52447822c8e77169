import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/** SHA-256 (or HMAC-SHA-256 when given a secret) in the shape SignatureV4 asks for. */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData): string | Uint8Array =>
  typeof d === 'string'
    ? d
    : d instanceof ArrayBuffer
      ? new Uint8Array(d)
      : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

/**
 * `fetch` with a SigV4 `Authorization` header made by the signer the AWS SDKs use (credentials
 * test/test, service apigateway), for raw-HTTP assertions the SDK would hide: headers, HAL, bodies.
 * `path` may carry a query string; it is sent exactly as given.
 */
export async function signedFetch(
  baseUrl: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; region?: string } = {},
): Promise<Response> {
  const url = new URL(path, baseUrl);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    region: init.region ?? 'us-east-1',
    service: 'apigateway',
    sha256: Sha256,
  });
  const headers: Record<string, string> = { host: url.host, ...(init.headers ?? {}) };
  if (init.body !== undefined) headers['content-type'] ??= 'application/json';
  const signed = await signer.sign({
    method: init.method ?? 'GET',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query,
    headers,
    body: init.body,
  });
  const sent = { ...signed.headers };
  delete sent.host; // fetch sets it itself and refuses it as an argument
  return fetch(url, { method: init.method ?? 'GET', headers: sent, body: init.body });
}
