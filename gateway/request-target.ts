/**
 * What the gateway forwards: only origin-form requests (`/path?query`) whose path, dot-segments
 * resolved, stays inside the target's base path; only requests whose `Host` it serves; and no identity
 * header a client set itself (docs/mtls-gateway.md, "What is forwarded").
 */

/** A request the gateway refuses, with the status and message it answers. */
export interface Refusal {
  status: number;
  message: string;
}

/**
 * RFC 3986 section 5.2.4 remove_dot_segments over the path's segments, with `%2e` counted as `.` (as
 * nginx and most servers decode it before they route).
 * @returns the resolved path, or undefined when a `..` climbs above the root.
 */
export function resolveDotSegments(path: string): string | undefined {
  const out: string[] = [];
  const segments = path.split('/').slice(1);
  segments.forEach((raw, i) => {
    const seg = raw.replace(/%2e/gi, '.');
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      if (out.length === 0)
        out.push('\0'); // above the root: marked, refused below
      else out.pop();
      if (last) out.push('');
    } else {
      out.push(raw);
    }
  });
  if (out.includes('\0')) return undefined;
  return `/${out.join('/')}`;
}

/**
 * The path and query to send to the target for a request target as received (`req.url`), under
 * `basePath` (no trailing slash, '' for none), or the refusal.
 */
export function forwardTarget(
  method: string | undefined,
  url: string | undefined,
  basePath: string,
): string | Refusal {
  if (method === 'CONNECT') {
    return { status: 405, message: 'CONNECT is not forwarded: this gateway is not a forward proxy' };
  }
  if (!url || !url.startsWith('/')) {
    // Absolute-form (`GET https://other/`), authority-form and asterisk-form pick another host or none.
    return {
      status: 400,
      message:
        'Only origin-form request targets (/path?query) are forwarded, not an absolute URL or authority',
    };
  }
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  const resolved = resolveDotSegments(path);
  // A target that decodes `%2F` or treats `\` as `/` before resolving must not climb out either.
  const asDecoded = path.replace(/%2f|%5c|\\/gi, '/');
  if (resolved === undefined || resolveDotSegments(asDecoded) === undefined) {
    return { status: 400, message: 'The request path leaves the base path (a .. segment above the root)' };
  }
  return `${basePath}${resolved}${query}`;
}

/** Lower-case `host[:port]` as a Host header names it. */
export function normaliseHost(host: string): string {
  return host.trim().toLowerCase();
}

/** Checks `host` (the request's Host header) against the allowed ones; undefined when allowed. */
export function checkHost(host: string | undefined, allowed: ReadonlySet<string>): Refusal | undefined {
  if (host === undefined || host === '') return { status: 400, message: 'A Host header is required' };
  if (allowed.has(normaliseHost(host))) return undefined;
  return {
    status: 421,
    message: `Host ${JSON.stringify(host.slice(0, 100))} is not served by this gateway; set GATEWAY_ALLOWED_HOSTS to serve it`,
  };
}

/**
 * Headers that say who the client is or how it connected. A client may not set them: the gateway
 * strips every one it sent and sets its own (Envoy's SANITIZE_SET), so the target can trust them.
 */
export function isIdentityHeader(name: string): boolean {
  const n = name.toLowerCase();
  return (
    n === 'forwarded' ||
    n === 'x-real-ip' ||
    n.startsWith('x-forwarded-') ||
    n.startsWith('x-client-cert') ||
    n === 'x-forwarded-client-cert'
  );
}

/** `raw` (name, value, ...) less the identity headers, plus the gateway's own. */
export function sanitiseIdentity(
  raw: string[],
  client: { address: string | undefined; host: string },
): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!isIdentityHeader(raw[i]!)) out.push(raw[i]!, raw[i + 1]!);
  if (client.address) out.push('X-Forwarded-For', client.address.replace(/^::ffff:(?=\d)/, ''));
  out.push('X-Forwarded-Proto', 'http', 'X-Forwarded-Host', client.host);
  return out;
}
