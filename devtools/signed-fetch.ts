import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../api/auth/sha256.js';

/** RFC 3986 encoding as SigV4 canonicalises it. */
const escapeUri = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export interface SignOptions {
  method?: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  service?: string;
  /** When the request was signed (default: now). */
  date?: Date;
  /** Presign for this many seconds (query-string auth) instead of an Authorization header. */
  presignExpiresIn?: number;
  /** Send and sign `x-amz-content-sha256` as the AWS SDK for JavaScript does (default true; botocore does not). */
  contentSha256Header?: boolean;
  /** Leave `host` out of the signed headers (it is still sent: HTTP/1.1 requires it). */
  omitHost?: boolean;
}

/**
 * Signs a raw HTTP request with SigV4 the way the AWS SDK does (`@smithy/signature-v4`), for tests the
 * SDK cannot express (hostile bodies, odd paths, tampering). `path` is sent as given: keep it
 * percent-encoded as it should appear on the wire; a `?query` part is re-encoded canonically.
 * Defaults: test/test, us-east-1, service apigateway.
 */
export async function signRequest(
  baseUrl: string,
  path: string,
  o: SignOptions = {},
): Promise<{ url: string; init: RequestInit & { headers: Record<string, string> } }> {
  const base = new URL(baseUrl);
  const [rawPath = '/', rawQuery = ''] = path.split(/\?(.*)/s);
  const query: Record<string, string | string[]> = {};
  for (const pair of rawQuery.split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const k = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
    const v = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signer = new SignatureV4({
    service: o.service ?? 'apigateway',
    region: o.region ?? 'us-east-1',
    credentials: { accessKeyId: o.accessKeyId ?? 'test', secretAccessKey: o.secretAccessKey ?? 'test' },
    sha256: NodeSha256,
    applyChecksum: o.contentSha256Header ?? true,
  });
  const headers: Record<string, string> = o.omitHost
    ? { ...(o.headers ?? {}) }
    : { host: base.host, ...(o.headers ?? {}) };
  if (o.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const request = {
    method: o.method ?? 'GET',
    protocol: base.protocol,
    hostname: base.hostname,
    port: base.port ? Number(base.port) : undefined,
    path: rawPath,
    query,
    headers,
    body: o.body,
  };
  const signed =
    o.presignExpiresIn !== undefined
      ? await signer.presign(request, { signingDate: o.date, expiresIn: o.presignExpiresIn })
      : await signer.sign(request, { signingDate: o.date });
  const qs = Object.entries(signed.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${escapeUri(k)}=${escapeUri(String(x))}`))
    .join('&');
  const outHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== 'host') outHeaders[k] = v;
  return {
    url: `${base.origin}${rawPath}${qs ? `?${qs}` : ''}`,
    init: { method: request.method, headers: outHeaders, body: o.body as BodyInit | undefined },
  };
}

/** `fetch` with a SigV4 signature (see {@link signRequest}). */
export async function signedFetch(baseUrl: string, path: string, o: SignOptions = {}): Promise<Response> {
  const { url, init } = await signRequest(baseUrl, path, o);
  return fetch(url, init);
}
