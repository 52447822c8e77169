import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  ALGORITHM_IDENTIFIER,
  SignatureV4Base,
  UNSIGNED_PAYLOAD,
  KEY_TYPE_IDENTIFIER,
  createScope,
} from '@smithy/signature-v4';
import {
  IncompleteSignatureError,
  InvalidSignatureError,
  MissingAuthenticationTokenError,
  UnrecognizedClientError,
} from '../../shared/errors.js';
import type { Credential, CredentialStore } from './credentials.js';
import { NodeSha256, sha256Hex } from './sha256.js';
import { isAwsRegion } from '../../shared/regions.js';

/** The service name every signature must be scoped to. */
export const SIGNING_SERVICE = 'apigateway';
/** How far a request's X-Amz-Date may be from the server clock (AWS: 15 minutes). */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
/** Longest lifetime of a presigned URL (AWS: 7 days). */
export const MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600;

const LONG_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const HEX64 = /^[0-9a-f]{64}$/;
const EMPTY_SHA256 = sha256Hex('');
/** Signing keys kept per credential (one per day, region and service signed for). */
const MAX_SIGNING_KEYS_PER_CREDENTIAL = 32;

/** A request as the verifier needs it: method, the URL as received, headers, and its body bytes. */
export interface SignedRequest {
  method: string;
  /** The request URL exactly as received (its path keeps its percent-encoding). */
  url: URL;
  headers: Headers;
  /** Reads the body; called only once the credential and date are known to be good. */
  body(): Promise<Uint8Array>;
}

/** Who signed a request, for which account and region, asking for which IAM action. */
export interface VerifiedCaller {
  credential: Credential;
  accountId: string;
  region: string;
  /** `apigateway:<METHOD>`, the IAM action name API Gateway uses. */
  action: string;
}

interface Parsed {
  presigned: boolean;
  accessKeyId: string;
  shortDate: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
  longDate: string;
  expiresS?: number;
}

/**
 * Verifies AWS Signature Version 4 (Authorization header or presigned query) for service `apigateway`.
 * The canonical-request and signing-key maths are `@smithy/signature-v4`'s (what the AWS SDK signs
 * with); this class only rebuilds the request the client signed: exactly its SignedHeaders, its path
 * as sent, its query, and the hash of the body actually received.
 */
export class SigV4Verifier extends SignatureV4Base {
  private readonly now: () => number;
  /** ALLOWED_REGIONS, or undefined for every region that exists. */
  private readonly allowedRegions: ReadonlySet<string> | undefined;
  /** Regions found to exist (a few dozen at most: only names that pass are kept). */
  private readonly knownRegions = new Set<string>();
  private readonly signingKeys = new WeakMap<Credential, Map<string, Buffer>>();

  constructor(
    private credentials: CredentialStore,
    opts: { now?: () => number; allowedRegions?: ReadonlySet<string> } = {},
  ) {
    // region and credentials are per request here; the base class only keeps them for signing.
    super({
      service: SIGNING_SERVICE,
      region: 'us-east-1',
      credentials: { accessKeyId: '', secretAccessKey: '' },
      sha256: NodeSha256,
      applyChecksum: false,
    });
    this.now = opts.now ?? Date.now;
    this.allowedRegions = opts.allowedRegions;
  }

  /**
   * Verifies every request from now on against `store` (a reloaded credentials file). The signing keys
   * cached for the old store's credentials are never used again: they are keyed by credential object,
   * and the old objects are garbage once no request holds them. A request already being verified
   * finishes with the credential it looked up.
   */
  useCredentials(store: CredentialStore): void {
    this.credentials = store;
  }

  /**
   * @returns the caller, when the signature is valid.
   * @throws MissingAuthenticationTokenError, UnrecognizedClientError, IncompleteSignatureError or
   *   InvalidSignatureError, each with AWS's status and wording.
   */
  async verify(req: SignedRequest): Promise<VerifiedCaller> {
    const p = this.parse(req);
    const credential = this.credentials.get(p.accessKeyId);
    if (!credential) throw new UnrecognizedClientError();
    this.checkScope(p);
    this.checkDate(p);
    if (!p.signedHeaders.includes('host')) {
      throw new InvalidSignatureError("'Host' must be a 'SignedHeader' in the AWS Authorization.");
    }
    // An unsigned date could be replaced to replay a captured request after its 15 minutes.
    if (!p.presigned && !p.signedHeaders.includes('x-amz-date')) {
      throw new InvalidSignatureError("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
    }

    const body = await req.body();
    const bodyHash = body.length === 0 ? EMPTY_SHA256 : sha256Hex(body);
    const claimed = p.presigned
      ? (req.url.searchParams.get('X-Amz-Content-Sha256') ?? undefined)
      : (req.headers.get('x-amz-content-sha256') ?? undefined);
    let candidates: string[];
    if (claimed === undefined) {
      // botocore's presigned URLs always say UNSIGNED-PAYLOAD; harmless when there is no body to protect.
      candidates = p.presigned && body.length === 0 ? [bodyHash, UNSIGNED_PAYLOAD] : [bodyHash];
    } else if (claimed === UNSIGNED_PAYLOAD && body.length === 0) {
      candidates = [UNSIGNED_PAYLOAD];
    } else if (claimed.toLowerCase() !== bodyHash) {
      throw new InvalidSignatureError(
        claimed === UNSIGNED_PAYLOAD || !HEX64.test(claimed.toLowerCase())
          ? `The x-amz-content-sha256 value '${claimed.slice(0, 80)}' is not accepted: send the SHA-256 of the request body in hex.`
          : "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    } else {
      candidates = [claimed];
    }

    const request = {
      method: req.method.toUpperCase(),
      path: req.url.pathname,
      query: canonicalQueryBag(req.url.search, p.presigned),
      headers: {},
    };
    // Names come from the caller's SignedHeaders: a map with no prototype keeps `__proto__` a name.
    const canonicalHeaders = Object.create(null) as Record<string, string>;
    for (const name of p.signedHeaders) {
      const v = req.headers.get(name);
      // A signed header that did not arrive cannot verify; leaving it out makes the comparison fail.
      if (v !== null)
        canonicalHeaders[name] = v
          .replace(/[\r\n]/g, ' ')
          .replace(/[ \t]+/g, ' ')
          .trim();
    }
    const scope = createScope(p.shortDate, p.region, p.service);
    const key = this.signingKey(credential, p.shortDate, p.region, p.service);
    const given = Buffer.from(p.signature, 'utf8');
    let first: { canonical: string; stringToSign: string } | undefined;
    for (const payloadHash of candidates) {
      // The typed HttpRequest has more fields than the canonicalisation reads.
      const canonical = this.createCanonicalRequest(
        request as unknown as Parameters<SignatureV4Base['createCanonicalRequest']>[0],
        canonicalHeaders,
        payloadHash,
      );
      // What SignatureV4Base.createStringToSign builds, hashed synchronously (its hashing is async).
      const stringToSign = `${ALGORITHM_IDENTIFIER}\n${p.longDate}\n${scope}\n${sha256Hex(canonical)}`;
      const expected = Buffer.from(createHmac('sha256', key).update(stringToSign).digest('hex'), 'utf8');
      if (expected.length === given.length && timingSafeEqual(expected, given)) {
        return {
          credential,
          accountId: credential.accountId,
          region: p.region,
          action: `apigateway:${request.method}`,
        };
      }
      first ??= { canonical, stringToSign };
    }
    throw new InvalidSignatureError(
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.' +
        `\n\nThe Canonical String for this request should have been\n'${first!.canonical}'` +
        `\n\nThe String-to-Sign should have been\n'${first!.stringToSign}'\n`,
    );
  }

  /**
   * The day's signing key (HMAC chain secret → date → region → service → aws4_request), derived once
   * per credential, day, region and service, as `getSigningKey` would, but synchronously. Keyed by the
   * credential object, so a credential that is replaced never reuses its old key.
   */
  private signingKey(credential: Credential, shortDate: string, region: string, service: string): Buffer {
    let keys = this.signingKeys.get(credential);
    if (!keys) this.signingKeys.set(credential, (keys = new Map()));
    const scope = `${shortDate}/${region}/${service}`;
    let key = keys.get(scope);
    if (!key) {
      key = deriveSigningKey(credential.secretAccessKey, shortDate, region, service);
      // Days and regions a caller signs for are few; an old day's key is never needed again.
      if (keys.size >= MAX_SIGNING_KEYS_PER_CREDENTIAL) keys.clear();
      keys.set(scope, key);
    }
    return key;
  }

  private parse(req: SignedRequest): Parsed {
    const authorization = req.headers.get('authorization');
    const q = req.url.searchParams;
    if (authorization === null && !q.has('X-Amz-Algorithm') && !q.has('X-Amz-Signature')) {
      throw new MissingAuthenticationTokenError();
    }
    if (authorization !== null) return this.parseHeader(authorization, req.headers);
    return this.parseQuery(q);
  }

  private parseHeader(authorization: string, headers: Headers): Parsed {
    const m = /^\s*(\S+)\s*(.*)$/s.exec(authorization);
    if (!m || m[1] !== ALGORITHM_IDENTIFIER) {
      throw new IncompleteSignatureError(
        `Authorization header must use the ${ALGORITHM_IDENTIFIER} algorithm (AWS Signature Version 4).`,
      );
    }
    const params = new Map<string, string>();
    for (const part of (m[2] ?? '').split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    const date = headers.get('x-amz-date');
    const missing: string[] = [];
    if (!params.get('Credential')) missing.push("Authorization header requires 'Credential' parameter.");
    if (!params.get('Signature')) missing.push("Authorization header requires 'Signature' parameter.");
    if (!params.get('SignedHeaders'))
      missing.push("Authorization header requires 'SignedHeaders' parameter.");
    if (!date) missing.push("Authorization header requires existence of a 'X-Amz-Date' header.");
    if (missing.length) throw new IncompleteSignatureError(missing.join(' '));
    return {
      presigned: false,
      ...this.parseCredential(params.get('Credential')!),
      signedHeaders: params.get('SignedHeaders')!.toLowerCase().split(';'),
      signature: params.get('Signature')!,
      longDate: date!,
    };
  }

  private parseQuery(q: URLSearchParams): Parsed {
    const missing = [
      'X-Amz-Algorithm',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-SignedHeaders',
      'X-Amz-Signature',
      'X-Amz-Expires',
    ].filter((n) => !q.get(n));
    if (missing.length) {
      throw new IncompleteSignatureError(
        `A presigned request requires the query parameters ${missing.map((n) => `'${n}'`).join(', ')}.`,
      );
    }
    if (q.get('X-Amz-Algorithm') !== ALGORITHM_IDENTIFIER) {
      throw new IncompleteSignatureError(`X-Amz-Algorithm must be ${ALGORITHM_IDENTIFIER}.`);
    }
    const expires = q.get('X-Amz-Expires')!;
    if (!/^\d{1,7}$/.test(expires) || Number(expires) < 1 || Number(expires) > MAX_PRESIGN_EXPIRES_S) {
      throw new InvalidSignatureError(
        `X-Amz-Expires must be a whole number of seconds between 1 and ${MAX_PRESIGN_EXPIRES_S}.`,
      );
    }
    return {
      presigned: true,
      ...this.parseCredential(q.get('X-Amz-Credential')!),
      signedHeaders: q.get('X-Amz-SignedHeaders')!.toLowerCase().split(';'),
      signature: q.get('X-Amz-Signature')!,
      longDate: q.get('X-Amz-Date')!,
      expiresS: Number(expires),
    };
  }

  private parseCredential(
    value: string,
  ): Pick<Parsed, 'accessKeyId' | 'shortDate' | 'region' | 'service' | 'terminator'> {
    const parts = value.split('/');
    if (parts.length !== 5 || parts.some((s) => s === '')) {
      throw new IncompleteSignatureError(
        `Credential must have the form <AccessKeyId>/<YYYYMMDD>/<region>/${SIGNING_SERVICE}/aws4_request, got '${value.slice(0, 200)}'.`,
      );
    }
    const [accessKeyId, shortDate, region, service, terminator] = parts as [
      string,
      string,
      string,
      string,
      string,
    ];
    return { accessKeyId, shortDate, region, service, terminator };
  }

  private checkScope(p: Parsed): void {
    if (p.terminator !== 'aws4_request') {
      throw new InvalidSignatureError(
        `Credential should be scoped with a valid terminator: 'aws4_request', not '${p.terminator.slice(0, 50)}'.`,
      );
    }
    if (p.service !== SIGNING_SERVICE) {
      throw new InvalidSignatureError(
        `Credential should be scoped to correct service: '${SIGNING_SERVICE}'. `,
      );
    }
    if (!this.regionAccepted(p.region)) {
      // docs/aws-behaviour.md, "Regions": AWS's answer to a scope naming a region that does not exist.
      throw new InvalidSignatureError(
        `Credential should be scoped to a valid region, not '${p.region.slice(0, 50)}'. `,
      );
    }
  }

  /** A region that exists (the AWS SDK's partition data) and, when ALLOWED_REGIONS is set, is in it. */
  private regionAccepted(region: string): boolean {
    if (this.allowedRegions) return this.allowedRegions.has(region);
    if (this.knownRegions.has(region)) return true;
    if (!isAwsRegion(region)) return false;
    this.knownRegions.add(region);
    return true;
  }

  private checkDate(p: Parsed): void {
    const signed = parseLongDate(p.longDate);
    if (signed === undefined) {
      throw new IncompleteSignatureError(
        `X-Amz-Date must be in the ISO 8601 basic format YYYYMMDDTHHMMSSZ, got '${p.longDate.slice(0, 50)}'.`,
      );
    }
    if (p.shortDate !== p.longDate.slice(0, 8)) {
      throw new InvalidSignatureError(
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${p.shortDate.slice(0, 20)}' != '${p.longDate.slice(0, 8)}', from '${p.longDate}'.`,
      );
    }
    const now = this.now();
    const fmt = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
    if (p.expiresS !== undefined) {
      if (now > signed + p.expiresS * 1000) {
        throw new InvalidSignatureError(
          `Signature expired: ${p.longDate} is now earlier than ${fmt(now - p.expiresS * 1000)} (${fmt(now)} - ${p.expiresS} sec.)`,
        );
      }
    } else if (signed < now - MAX_CLOCK_SKEW_MS) {
      throw new InvalidSignatureError(
        `Signature expired: ${p.longDate} is now earlier than ${fmt(now - MAX_CLOCK_SKEW_MS)} (${fmt(now)} - 15 min.)`,
      );
    }
    if (signed > now + MAX_CLOCK_SKEW_MS) {
      throw new InvalidSignatureError(
        `Signature not yet current: ${p.longDate} is still later than ${fmt(now + MAX_CLOCK_SKEW_MS)} (${fmt(now)} + 15 min.)`,
      );
    }
  }
}

/** SigV4's signing key: HMAC-SHA256 chained over the scope, starting from `AWS4` + the secret. */
export function deriveSigningKey(secret: string, shortDate: string, region: string, service: string): Buffer {
  let key = createHmac('sha256', `AWS4${secret}`).update(shortDate).digest();
  for (const part of [region, service, KEY_TYPE_IDENTIFIER])
    key = createHmac('sha256', key).update(part).digest();
  return key;
}

/** Epoch ms of an X-Amz-Date (`20261128T225000Z`), or undefined when malformed. */
export function parseLongDate(s: string): number | undefined {
  const m = LONG_DATE.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  // Reject dates such as 20261331T...: Date.UTC would roll them over silently.
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59)
    return undefined;
  return ms;
}

/**
 * The query as the signer saw it: decoded keys and values (repeated keys as arrays), without the
 * signature itself. Decoded by hand because URLSearchParams would turn a literal `+` into a space,
 * while SigV4 clients decode only percent-escapes.
 */
export function canonicalQueryBag(search: string, presigned: boolean): Record<string, string | string[]> {
  const bag: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const pair of search.replace(/^\?/, '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = decode(eq < 0 ? pair : pair.slice(0, eq));
    const v = eq < 0 ? '' : decode(pair.slice(eq + 1));
    if (presigned && k === 'X-Amz-Signature') continue;
    const prev = bag[k];
    // Appended in place: copying the array on each repeat made `?a&a&a...` quadratic.
    if (prev === undefined) bag[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else bag[k] = [prev, v];
  }
  return bag;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // not valid percent-encoding: sign it as it came; it then cannot match a client's
  }
}
