/**
 * An executable reference model of the ClientCertificate resource family: what the service SHOULD answer,
 * stated from its documented behaviour (README "The API", "Validation", "Quotas"; docs/aws-behaviour.md;
 * the expected answers the hand-written tests pin), never from the service's code. Pure TypeScript,
 * in memory, no I/O: the conformance runner (./conformance.ts) asks it what to expect before each request
 * and tells it what the service created (ids, dates and PEMs are the only things the model cannot know).
 *
 * Where the documentation leaves a detail open (which of two errors in one request wins, the wording of a
 * message nobody pinned), the model says so: `message: null` accepts any message, `{ prefix }` pins the
 * start. Everything else is exact.
 */

import { partition } from '@aws-sdk/core/client';

/** Who signs a request. */
export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
  /** IAM actions granted; `apigateway:*` for everything. */
  allow: string[];
  /** Per-account certificate limit (CLIENT_CERTIFICATE_LIMIT, default 60). */
  clientCertificateLimit?: number;
}

/** A request as the model sees it: the signer, the region of the credential scope, and the operation. */
export interface Call {
  /** An access key id; one the service does not know is a hostile caller. */
  accessKeyId: string;
  /** The secret the request is signed with (a wrong one is a hostile caller). */
  secretAccessKey: string;
  region: string;
  op: Op;
}

/** A request body exactly as sent (a JSON text, or bytes that may not be UTF-8). */
export type Body = string | Uint8Array;

export type Op =
  | { op: 'generate'; body: Body }
  | { op: 'get'; id: string }
  | { op: 'list'; limit?: string; position?: string }
  | { op: 'update'; id: string; body: Body }
  | { op: 'delete'; id: string }
  | { op: 'tag'; arn: string; body: Body }
  | { op: 'untag'; arn: string; tagKeys: string[] }
  | { op: 'getTags'; arn: string };

/** A stored certificate as the model knows it. Tags are a Map: any string is a key, `__proto__` included. */
export interface ModelRecord {
  id: string;
  description?: string;
  tags: Map<string, string>;
  createdDate: number;
  expirationDate: number;
  pem: string;
}

export type MessageRule = string | { prefix: string } | null;

export type Expected =
  | { status: number; error: string; message: MessageRule }
  | { status: 201; generated: { description?: string; tags: Map<string, string> } }
  | { status: 200; record: ModelRecord }
  | { status: 200; list: ModelRecord[]; more: boolean }
  | { status: 200; tags: Map<string, string> }
  | { status: 202 | 204; empty: true };

// ---- documented limits and messages ------------------------------------------------------------

/** README "Validation": body limit 64 KiB. */
export const BODY_LIMIT = 64 * 1024;
/** README: description at most 1024 characters; tags at most 50; key 1-128, value at most 256. */
export const DESCRIPTION_MAX = 1024;
export const TAGS_MAX = 50;
export const TAG_KEY_MAX = 128;
export const TAG_VALUE_MAX = 256;
/** aws-behaviour.md "Quotas": 60 certificates per account per region. */
export const DEFAULT_LIMIT = 60;
/** aws-behaviour.md: limit default 25, maximum 500. */
export const LIMIT_DEFAULT = 25;
export const LIMIT_MAX = 500;
/** aws-behaviour.md: notAfter = createdDate + exactly 365 days. */
export const VALIDITY_SECONDS = 365 * 24 * 3600;
/** README: ids are 6 characters [a-z0-9]. */
export const ID = /^[a-z0-9]{6}$/;

export const NOT_FOUND = 'Invalid Client Certificate identifier specified';
const ENUM = '[add, remove, move, test, replace, copy]';
const TAG_CHARS = 'allowed characters are letters, digits, spaces and + - = . _ : / @';
/** AWS's tag character set (letters, numbers, separators/spaces, `_ . : / = + - @`). */
const TAG_CHARSET = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
/** Control characters (Unicode Cc) other than tab, LF and CR. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

const bad = (message: MessageRule): Expected => ({ status: 400, error: 'BadRequestException', message });
const notFound = (): Expected => ({ status: 404, error: 'NotFoundException', message: NOT_FOUND });
/** Length in characters (Unicode code points), as AWS counts tag lengths. */
const chars = (s: string) => [...s].length;

/** A tag key quoted in a message: JSON-quoted, cut after 40 characters with `...` (the hand-written tests). */
const quoteKey = (k: string) => JSON.stringify(chars(k) > 40 ? `${[...k].slice(0, 40).join('')}...` : k);

class Reject {
  constructor(readonly expected: Expected) {}
}
const fail = (e: Expected): never => {
  throw new Reject(e);
};

/** A JSON object as parsed, with own keys in order (JSON.parse keeps `__proto__` as an own key). */
type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function parseBody(body: Body): Record<string, Json> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  if (bytes.length > BODY_LIMIT) {
    fail({
      status: 413,
      error: 'PayloadTooLargeException',
      message: `Request body must not exceed ${BODY_LIMIT} bytes`,
    });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail(bad({ prefix: 'Could not parse request body into json' }));
  }
  if (text === '') return {};
  let v: Json;
  try {
    v = JSON.parse(text);
  } catch {
    return fail(bad({ prefix: 'Could not parse request body into json' }));
  }
  if (!isObject(v)) fail(bad('Request body must be a JSON object'));
  return v as Record<string, Json>;
}

function validateDescription(v: Json, field = 'description'): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return fail(bad(`${field} must be a string`));
  if (chars(v) > DESCRIPTION_MAX)
    fail(bad(`${field} must be at most ${DESCRIPTION_MAX} characters, got ${chars(v)}`));
  if (CONTROL.test(v)) fail(bad(`${field} must not contain control characters`));
  return v;
}

export function tagKeyProblem(k: string): string | undefined {
  if (k === '') return 'a tag key must not be empty';
  if (chars(k) > TAG_KEY_MAX) return `a tag key must be at most ${TAG_KEY_MAX} characters, got ${chars(k)}`;
  if (k.toLowerCase().startsWith('aws:')) return "a tag key must not start with 'aws:'";
  if (!TAG_CHARSET.test(k)) return TAG_CHARS;
  return undefined;
}

function validateTagKey(k: string, field: string) {
  const p = tagKeyProblem(k);
  if (p === undefined) return;
  fail(
    bad(k === '' ? `Invalid tag key in ${field}: ${p}` : `Invalid tag key ${quoteKey(k)} in ${field}: ${p}`),
  );
}

function validateTags(v: Json): Map<string, string> {
  const out = new Map<string, string>();
  if (v === undefined) return out;
  if (!isObject(v)) return fail(bad('tags must be an object mapping tag keys to string values'));
  const entries = Object.entries(v);
  if (entries.length > TAGS_MAX) fail(bad(`tags must have at most ${TAGS_MAX} tags, got ${entries.length}`));
  for (const [k, value] of entries) {
    validateTagKey(k, 'tags');
    const where = `Invalid value for tag ${quoteKey(k)} in tags`;
    if (typeof value !== 'string') fail(bad(`${where}: tag values must be strings`));
    const s = value as string;
    if (chars(s) > TAG_VALUE_MAX) {
      fail(bad(`${where}: a tag value must be at most ${TAG_VALUE_MAX} characters, got ${chars(s)}`));
    }
    if (!TAG_CHARSET.test(s)) fail(bad(`${where}: ${TAG_CHARS}`));
    out.set(k, s);
  }
  return out;
}

/** The `Invalid patch ...` wording recorded from real AWS for sibling resources (aws-behaviour.md). */
function validatePatch(v: Json): { change: boolean; description?: string } {
  // JSON null is an absent member, as AWS's JSON protocols read it.
  if (v === undefined || v === null) return { change: false };
  if (!Array.isArray(v)) return fail(bad(null));
  // Members of the wrong JSON type: a 400 whose wording nobody documents.
  if (v.some((p) => !isObject(p) || typeof p.op !== 'string')) return fail(bad(null));
  // AWS's model validation (the op enum) runs over the whole list before any operation is looked at.
  const enumErrors: string[] = [];
  v.forEach((p, i) => {
    const op = isObject(p) ? p.op : undefined;
    if (typeof op === 'string' && !['add', 'remove', 'move', 'test', 'replace', 'copy'].includes(op)) {
      enumErrors.push(
        `Value '${op}' at 'updateClientCertificateInput.patchOperations.${i + 1}.member.op' failed to satisfy constraint: Member must satisfy enum value set: ${ENUM}`,
      );
    }
  });
  if (enumErrors.length > 0) {
    const n = enumErrors.length;
    fail(bad(`${n} validation error${n > 1 ? 's' : ''} detected: ${enumErrors.join('; ')}`));
  }
  let out: { change: boolean; description?: string } = { change: false };
  v.forEach((p, i) => {
    if (!isObject(p) || typeof p.op !== 'string' || typeof p.path !== 'string') return fail(bad(null));
    if (p.op !== 'replace') {
      fail(
        bad(`Invalid patch path  '${p.path}' specified for op '${p.op}'. Please choose supported operations`),
      );
    }
    if (p.path !== '/description') {
      fail(bad(`Invalid patch path  '${p.path}' specified for op 'replace'. Must be one of: [/description]`));
    }
    const value = p.value === null ? undefined : p.value;
    if (value !== undefined && typeof value !== 'string') return fail(bad(null));
    out = { change: true, description: validateDescription(value, `patchOperations[${i}].value`) };
  });
  return out;
}

// ---- ARNs ----------------------------------------------------------------------------------------

/**
 * ARNs start with the region's partition (docs/aws-behaviour.md "ARNs": aws, aws-cn, aws-us-gov, ...),
 * read from the AWS SDK's partition data.
 */
export const partitionOf = (region: string) => partition(region).name;
export const arnOf = (region: string, id: string) =>
  `arn:${partitionOf(region)}:apigateway:${region}::/clientcertificates/${id}`;

/** The id an ARN names in `region`, or the 400 for it (README: malformed, another service's, another region's). */
function idFromArn(arn: string, region: string): string {
  const expected = `expected ${arnOf(region, '{clientcertificate_id}')}`;
  const no = (why: string | null) =>
    fail(
      bad(
        why === null
          ? { prefix: 'Invalid ARN specified in the request: ' }
          : `Invalid ARN specified in the request: ${why}; ${expected}`,
      ),
    );
  const parts = arn.split(':');
  const [, partition = '', service = '', arnRegion = '', account = ''] = parts;
  const resource = parts.slice(5).join(':');
  // The ARN format: arn:partition:service:region:account:resource, account empty or 12 digits.
  if (
    parts[0] !== 'arn' ||
    parts.length < 6 ||
    !['aws', 'aws-cn', 'aws-us-gov', 'aws-iso', 'aws-iso-b', 'aws-iso-e', 'aws-iso-f', 'aws-eusc'].includes(
      partition,
    ) ||
    !/^[a-z0-9-]+$/.test(service) ||
    !/^[a-z0-9-]*$/.test(arnRegion) ||
    !/^(\d{12})?$/.test(account) ||
    resource === ''
  ) {
    return no('it is not an ARN');
  }
  if (service !== 'apigateway') return no('it does not name an API Gateway resource');
  // The service addresses certificates only by the ARN it documents: the region's partition, no account.
  if (partition !== partitionOf(region)) {
    return no(`its partition '${partition}' is not the request's partition '${partitionOf(region)}'`);
  }
  if (account !== '') return no('it names an account, and API Gateway ARNs have none');
  const m = /^\/clientcertificates\/([^/]+)$/.exec(resource);
  if (!m) return no('it does not name a client certificate');
  if (arnRegion !== region) {
    return no(
      `its region ${arnRegion ? `'${arnRegion}'` : '(empty)'} is not the request's region '${region}'`,
    );
  }
  return m[1]!;
}

// ---- the model -----------------------------------------------------------------------------------

export const tenantKey = (accountId: string, region: string) => `${accountId}/${region}`;

export interface ModelOptions {
  credentials: Credential[];
  /** Regions that exist (the SigV4 scope must name one); anything else is a 403. */
  regions: ReadonlySet<string>;
  /** The default CLIENT_CERTIFICATE_LIMIT. */
  defaultLimit?: number;
}

/** What the model answers for one call, and how to commit what the service made (for 2xx answers). */
export interface Prediction {
  expected: Expected;
  tenant?: string;
}

export class ClientCertificatesModel {
  /** tenant ("account/region") -> id -> record. */
  readonly tenants = new Map<string, Map<string, ModelRecord>>();
  /** Paging tokens the service handed out, per tenant: token -> the last id of the page. */
  readonly positions = new Map<string, Map<string, string>>();
  readonly credentials: Map<string, Credential>;

  constructor(readonly opts: ModelOptions) {
    this.credentials = new Map(opts.credentials.map((c) => [c.accessKeyId, c]));
  }

  records(tenant: string): Map<string, ModelRecord> {
    let m = this.tenants.get(tenant);
    if (!m) this.tenants.set(tenant, (m = new Map()));
    return m;
  }

  /** Every id the model knows, in any tenant (for cross-tenant probes). */
  allIds(): string[] {
    return [...this.tenants.values()].flatMap((m) => [...m.keys()]);
  }

  tokens(tenant: string): string[] {
    return [...(this.positions.get(tenant)?.keys() ?? [])];
  }

  /** What the service should answer. Pure: the state changes only through the commit* methods. */
  predict(call: Call): Prediction {
    try {
      return this.predictOrThrow(call);
    } catch (e) {
      if (e instanceof Reject) return { expected: e.expected };
      throw e;
    }
  }

  private predictOrThrow(call: Call): Prediction {
    // The body is read (and bounded) before anything else: the signature covers its hash.
    const body = 'body' in call.op ? call.op.body : undefined;
    if (
      body !== undefined &&
      (typeof body === 'string' ? Buffer.byteLength(body) : body.length) > BODY_LIMIT
    ) {
      return {
        expected: {
          status: 413,
          error: 'PayloadTooLargeException',
          message: `Request body must not exceed ${BODY_LIMIT} bytes`,
        },
      };
    }
    // Authentication (README "Authentication"): unknown key, wrong secret, a region that does not exist.
    const cred = this.credentials.get(call.accessKeyId);
    if (!cred) {
      return {
        expected: {
          status: 403,
          error: 'UnrecognizedClientException',
          message: 'The security token included in the request is invalid.',
        },
      };
    }
    // The credential scope is checked before the signature is computed (the scope names its key).
    if (!this.opts.regions.has(call.region)) {
      return {
        expected: {
          status: 403,
          error: 'InvalidSignatureException',
          // docs/aws-behaviour.md "Regions": AWS's words, with the trailing space.
          message: `Credential should be scoped to a valid region, not '${call.region}'. `,
        },
      };
    }
    if (cred.secretAccessKey !== call.secretAccessKey) {
      return {
        expected: {
          status: 403,
          error: 'InvalidSignatureException',
          message: {
            prefix: 'The request signature we calculated does not match the signature you provided.',
          },
        },
      };
    }
    // Permissions: a credential's allow list names the HTTP method's action.
    const method = METHOD[call.op.op];
    if (!cred.allow.includes('apigateway:*') && !cred.allow.includes(`apigateway:${method}`)) {
      const path = resourcePath(call.op);
      const head = `User: ${cred.accessKeyId} (account ${cred.accountId}) is not authorized to perform: apigateway:${method} on resource: `;
      return {
        expected: {
          status: 401,
          error: 'UnauthorizedException',
          message:
            path === null
              ? { prefix: head }
              : `${head}arn:${partitionOf(call.region)}:apigateway:${call.region}::${path}`,
        },
      };
    }
    const tenant = tenantKey(cred.accountId, call.region);
    const recs = this.tenants.get(tenant) ?? new Map<string, ModelRecord>();
    const find = (id: string) => {
      const r = ID.test(id) ? recs.get(id) : undefined;
      return r ?? fail(notFound());
    };
    const op = call.op;
    switch (op.op) {
      case 'generate': {
        const body = parseBody(op.body);
        const description = validateDescription(body.description);
        const tags = validateTags(body.tags);
        const limit = cred.clientCertificateLimit ?? this.opts.defaultLimit ?? DEFAULT_LIMIT;
        if (limit > 0 && recs.size >= limit) {
          fail({
            status: 429,
            error: 'LimitExceededException',
            message: `The maximum number of client certificates (${limit}) for this account in ${call.region} has been reached. Delete unused client certificates and try again.`,
          });
        }
        return { tenant, expected: { status: 201, generated: { description, tags } } };
      }
      case 'get':
        return { tenant, expected: { status: 200, record: find(op.id) } };
      case 'list': {
        let limit = LIMIT_DEFAULT;
        if (op.limit !== undefined) {
          limit = /^[0-9]+$/.test(op.limit) && op.limit.length <= 3 ? Number(op.limit) : NaN;
          if (!(limit >= 1 && limit <= LIMIT_MAX)) {
            fail(
              bad(
                `Invalid limit ${JSON.stringify(op.limit)}: limit must be a whole number from 1 to ${LIMIT_MAX}`,
              ),
            );
          }
        }
        let after: string | undefined;
        if (op.position !== undefined) {
          after = this.positions.get(tenant)?.get(op.position);
          if (after === undefined) {
            fail(
              bad(
                'Invalid position: pass the position value of the previous GetClientCertificates answer unchanged',
              ),
            );
          }
        }
        const ids = [...recs.keys()].sort().filter((id) => after === undefined || id > after);
        return {
          tenant,
          expected: {
            status: 200,
            list: ids.slice(0, limit).map((id) => recs.get(id)!),
            more: ids.length > limit,
          },
        };
      }
      case 'update': {
        if (!ID.test(op.id)) fail(notFound());
        const patch = validatePatch(parseBody(op.body).patchOperations);
        const r = find(op.id);
        const next: ModelRecord = { ...r, tags: new Map(r.tags) };
        if (patch.change) {
          if (patch.description === undefined) delete next.description;
          else next.description = patch.description;
        }
        return { tenant, expected: { status: 200, record: next } };
      }
      case 'delete':
        find(op.id);
        return { tenant, expected: { status: 202, empty: true } };
      case 'getTags':
        return { tenant, expected: { status: 200, tags: find(idFromArn(op.arn, call.region)).tags } };
      case 'tag': {
        const id = idFromArn(op.arn, call.region);
        if (!ID.test(id)) fail(notFound());
        const body = parseBody(op.body);
        if (body.tags === undefined) fail(bad('tags is required: a map of tag keys to values'));
        const tags = validateTags(body.tags);
        const r = find(id);
        const merged = new Map([...r.tags, ...tags]);
        if (merged.size > TAGS_MAX) {
          fail(
            bad(
              `Too many tags: a client certificate can have at most ${TAGS_MAX} tags; remove some with UntagResource first`,
            ),
          );
        }
        return { tenant, expected: { status: 204, empty: true } };
      }
      case 'untag': {
        const id = idFromArn(op.arn, call.region);
        if (!ID.test(id)) fail(notFound());
        if (op.tagKeys.length === 0) {
          fail(bad('tagKeys is required: name at least one tag key to remove (?tagKeys=key)'));
        }
        for (const k of op.tagKeys) validateTagKey(k, 'tagKeys');
        find(id);
        return { tenant, expected: { status: 204, empty: true } };
      }
    }
  }

  /**
   * Applies a call the service answered as predicted. `made` is what only the service can know: the
   * created record (Generate) or the position token it handed out (GetClientCertificates).
   */
  commit(call: Call, p: Prediction, made: { record?: ModelRecord; position?: string } = {}): void {
    const e = p.expected;
    if (p.tenant === undefined || e.status >= 300) return;
    const recs = this.records(p.tenant);
    const op = call.op;
    switch (op.op) {
      case 'generate':
        recs.set(made.record!.id, made.record!);
        return;
      case 'list':
        if ('list' in e && made.position !== undefined) {
          let m = this.positions.get(p.tenant);
          if (!m) this.positions.set(p.tenant, (m = new Map()));
          m.set(made.position, e.list.at(-1)!.id);
        }
        return;
      case 'update':
        if ('record' in e) recs.set(e.record.id, e.record);
        return;
      case 'delete':
        recs.delete(op.id);
        return;
      case 'tag': {
        const r = recs.get(idFromArn(op.arn, call.region))!;
        for (const [k, v] of validateTags(parseBody(op.body).tags)) r.tags.set(k, v);
        return;
      }
      case 'untag': {
        const r = recs.get(idFromArn(op.arn, call.region))!;
        for (const k of op.tagKeys) r.tags.delete(k);
        return;
      }
      default:
        return;
    }
  }
}

/** The IAM action (HTTP method) of each operation. */
export const METHOD: Record<Op['op'], string> = {
  generate: 'POST',
  get: 'GET',
  list: 'GET',
  update: 'PATCH',
  delete: 'DELETE',
  tag: 'PUT',
  untag: 'DELETE',
  getTags: 'GET',
};

/** The request path as the 401's resource ARN names it, when the documentation pins it (plain ids only). */
function resourcePath(op: Op): string | null {
  switch (op.op) {
    case 'generate':
    case 'list':
      return '/clientcertificates';
    case 'get':
    case 'update':
    case 'delete':
      return /^[A-Za-z0-9]+$/.test(op.id) ? `/clientcertificates/${op.id}` : null;
    default:
      return null;
  }
}
