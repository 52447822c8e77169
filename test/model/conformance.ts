// test/model/: the executable reference model of the API and its fast-check conformance runs against the real service.
/**
 * Model-based conformance: fast-check generates command sequences (valid and hostile), each command is sent
 * to the real service (API, worker, redis-server) through the AWS SDK or raw signed HTTP, and its answer
 * (status, x-amzn-ErrorType, message, body) is compared with the reference model after every step.
 * Used by test/conformance.test.ts (a bounded run plus the regression sequences) and by `npm run fuzz`.
 */
import { X509Certificate } from 'node:crypto';
import * as apigw from '@aws-sdk/client-api-gateway';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import fc from 'fast-check';
import type { TestService } from '../../devtools/service.js';
import { signRequest } from '../../devtools/signed-fetch.js';
import {
  ClientCertificatesModel,
  ID,
  VALIDITY_SECONDS,
  arnOf,
  type Body,
  type Call,
  type Credential,
  type Expected,
  type ModelRecord,
  type Op,
  type Prediction,
} from './client-certificates-model.js';

// ---- the world the commands run in ---------------------------------------------------------------

/** Accounts and credentials of the conformance service: two accounts, one of them with a quota of 1. */
export const CREDENTIALS: Credential[] = [
  { accessKeyId: 'test', secretAccessKey: 'test', accountId: '000000000000', allow: ['apigateway:*'] },
  {
    accessKeyId: 'test-ci',
    secretAccessKey: 'ci-secret',
    accountId: '000000000000',
    allow: ['apigateway:*'],
  },
  {
    accessKeyId: 'bob',
    secretAccessKey: 'bob-secret',
    accountId: '222222222222',
    allow: ['apigateway:*'],
    clientCertificateLimit: 1,
  },
  {
    accessKeyId: 'bob-reader',
    secretAccessKey: 'reader-secret',
    accountId: '222222222222',
    allow: ['apigateway:GET'],
    clientCertificateLimit: 1,
  },
];
/** Regions that exist; cn-north-1 and us-gov-west-1 lie in the aws-cn and aws-us-gov partitions. */
export const REAL_REGIONS = ['us-east-1', 'eu-west-1', 'ap-south-1', 'cn-north-1', 'us-gov-west-1'];
/** Regions that match the pattern but do not exist: AWS answers 403 (issue 13, item 1). */
export const FAKE_REGIONS = ['zz-fake-9', 'us-east-9', 'mars-north-1'];

export interface Switches {
  /** Generate calls signed for made-up regions (FAKE_REGIONS). */
  fakeRegions: boolean;
  /** Generate `__proto__` tag keys. */
  protoKeys: boolean;
}

/** Defaults; CONFORMANCE_FAKE_REGIONS=0 / CONFORMANCE_PROTO_KEYS=0 turn a family of inputs off. */
export function switchesFromEnv(env = process.env): Switches {
  return { fakeRegions: env.CONFORMANCE_FAKE_REGIONS !== '0', protoKeys: env.CONFORMANCE_PROTO_KEYS !== '0' };
}

/** Counts over a whole fuzz session. */
export class Stats {
  operations = 0;
  runs = 0;
  readonly answers = new Map<string, number>();
  /** Requests made by the commands (the final state walks are counted apart). */
  count(op: string, status: number, error?: string) {
    if (!op.endsWith('(final)')) this.operations++;
    const k = `${op} ${status}${error ? ` ${error}` : ''}`;
    this.answers.set(k, (this.answers.get(k) ?? 0) + 1);
  }
}

export class Real {
  private readonly clients = new Map<string, APIGatewayClient>();
  constructor(
    readonly svc: TestService,
    readonly stats: Stats,
  ) {}
  get url() {
    return this.svc.api.url;
  }
  client(call: Call): APIGatewayClient {
    const k = `${call.accessKeyId}\n${call.secretAccessKey}\n${call.region}`;
    let c = this.clients.get(k);
    if (!c) {
      c = new APIGatewayClient({
        endpoint: this.url,
        region: call.region,
        credentials: { accessKeyId: call.accessKeyId, secretAccessKey: call.secretAccessKey },
        maxAttempts: 1,
        requestHandler: { requestTimeout: 60_000 },
      });
      this.clients.set(k, c);
    }
    return c;
  }
  /** Removes every certificate (the model of a new run starts empty). */
  async reset() {
    for await (const batch of this.svc.store.scanCertificates()) {
      for (const { tenant, id } of batch) await this.svc.store.delete(tenant, id);
    }
  }
  destroy() {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }
}

export type World = { model: ClientCertificatesModel; real: Real };

export function newModel(): ClientCertificatesModel {
  return new ClientCertificatesModel({ credentials: CREDENTIALS, regions: new Set(REAL_REGIONS) });
}

// ---- JSON bodies that keep `__proto__` as an ordinary key ------------------------------------------

/** A JSON object as an ordered list of entries, so any key (even `__proto__`) is serialised as given. */
export class JObj {
  constructor(readonly entries: [string, JVal][]) {}
}
export type JVal = string | number | boolean | null | JVal[] | JObj;
export const obj = (entries: [string, JVal][]) => new JObj(entries);
export function json(v: JVal): string {
  if (v instanceof JObj) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${json(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(json).join(',')}]`;
  return JSON.stringify(v);
}

// ---- symbolic references, resolved against the model when the command runs -------------------------

export type IdRef = { own: number } | { any: number } | { lit: string };
export type ArnRef =
  | { form: 'good' | 'unencoded'; id: IdRef }
  | { form: 'region'; id: IdRef; region: string }
  | { form: 'lit'; arn: string };
export type PosRef = { token: number } | { tamper: number } | { lit: string };
export type CallerRef =
  { cred: number; region: string } | { hostile: 'unknown-key' | 'wrong-secret'; region: string };

/** A step before resolution: fast-check generates and shrinks these. */
export type Step =
  | { op: 'generate'; body: Body }
  | { op: 'get' | 'delete'; id: IdRef }
  | { op: 'list'; limit?: string; position?: PosRef; /** Pages to follow after this one. */ follow?: number }
  | { op: 'update'; id: IdRef; body: Body }
  | { op: 'tag'; arn: ArnRef; body: Body }
  | { op: 'untag'; arn: ArnRef; tagKeys: string[] }
  | { op: 'getTags'; arn: ArnRef };

export interface StepSpec {
  caller: CallerRef;
  step: Step;
  /** Send through the AWS SDK when the request can be expressed with it (else raw signed HTTP). */
  sdk: boolean;
}

function callerOf(c: CallerRef): { accessKeyId: string; secretAccessKey: string; region: string } {
  if ('cred' in c) {
    const cred = CREDENTIALS[c.cred % CREDENTIALS.length]!;
    return { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretAccessKey, region: c.region };
  }
  return c.hostile === 'unknown-key'
    ? { accessKeyId: 'AKIANOBODY', secretAccessKey: 'x', region: c.region }
    : { accessKeyId: 'test', secretAccessKey: 'not-the-secret', region: c.region };
}

function tenantOf(m: ClientCertificatesModel, c: { accessKeyId: string; region: string }): string {
  const cred = m.credentials.get(c.accessKeyId);
  return cred ? `${cred.accountId}/${c.region}` : '';
}

const pick = <T>(xs: T[], n: number): T | undefined => (xs.length === 0 ? undefined : xs[n % xs.length]);

function resolveId(m: ClientCertificatesModel, tenant: string, r: IdRef): string {
  if ('lit' in r) return r.lit;
  const ids = 'own' in r ? [...(m.tenants.get(tenant)?.keys() ?? [])].sort() : m.allIds().sort();
  return pick(ids, 'own' in r ? r.own : r.any) ?? 'zzzzzz';
}

/** The ARN and how it goes on the wire (encoded, as every SDK sends it, or raw). */
function resolveArn(m: ClientCertificatesModel, tenant: string, region: string, r: ArnRef) {
  if (r.form === 'lit') return { arn: r.arn, encoded: true };
  const id = resolveId(m, tenant, r.id);
  // Unencoded only where the URL parser leaves the path alone (it trims spaces, drops #..., resolves dots).
  const encoded = r.form !== 'unencoded' || !/^[A-Za-z0-9]+$/.test(id);
  return { arn: arnOf(r.form === 'region' ? r.region : region, id), encoded };
}

export function resolve(m: ClientCertificatesModel, spec: StepSpec): { call: Call; arnEncoded: boolean } {
  const who = callerOf(spec.caller);
  const tenant = tenantOf(m, who);
  const s = spec.step;
  let op: Op;
  let arnEncoded = true;
  switch (s.op) {
    case 'generate':
      op = s;
      break;
    case 'get':
    case 'delete':
      op = { op: s.op, id: resolveId(m, tenant, s.id) };
      break;
    case 'update':
      op = { op: 'update', id: resolveId(m, tenant, s.id), body: s.body };
      break;
    case 'list': {
      let position: string | undefined;
      if (s.position) {
        const tokens = m.tokens(tenant);
        if ('lit' in s.position) position = s.position.lit;
        else if ('token' in s.position) position = pick(tokens, s.position.token) ?? 'garbage!';
        else position = `${pick(tokens, s.position.tamper) ?? 'QUJD'}A`;
      }
      op = {
        op: 'list' as const,
        ...(s.limit !== undefined ? { limit: s.limit } : {}),
        ...(position !== undefined ? { position } : {}),
      };
      break;
    }
    case 'tag':
    case 'untag':
    case 'getTags': {
      const a = resolveArn(m, tenant, who.region, s.arn);
      arnEncoded = a.encoded;
      op =
        s.op === 'tag'
          ? { op: 'tag', arn: a.arn, body: s.body }
          : s.op === 'untag'
            ? { op: 'untag', arn: a.arn, tagKeys: s.tagKeys }
            : { op: 'getTags', arn: a.arn };
      break;
    }
  }
  return { call: { ...who, op }, arnEncoded };
}

// ---- sending a call ----------------------------------------------------------------------------------

/** An answer reduced to what is compared: status, error type and message, and the JSON body on the wire. */
export interface Answer {
  status: number;
  error?: string;
  message?: string;
  body?: unknown;
  via: 'sdk' | 'raw';
  requestId?: string | null;
}

const enc = encodeURIComponent;

function rawRequest(call: Call, arnEncoded: boolean): { method: string; path: string; body?: Body } {
  const op = call.op;
  const arnPath = (arn: string) => `/tags/${arnEncoded ? enc(arn) : arn}`;
  switch (op.op) {
    case 'generate':
      return { method: 'POST', path: '/clientcertificates', body: op.body };
    case 'get':
      return { method: 'GET', path: `/clientcertificates/${enc(op.id)}` };
    case 'list': {
      const q = [
        ...(op.limit !== undefined ? [`limit=${enc(op.limit)}`] : []),
        ...(op.position !== undefined ? [`position=${enc(op.position)}`] : []),
      ];
      return { method: 'GET', path: `/clientcertificates${q.length ? `?${q.join('&')}` : ''}` };
    }
    case 'update':
      return { method: 'PATCH', path: `/clientcertificates/${enc(op.id)}`, body: op.body };
    case 'delete':
      return { method: 'DELETE', path: `/clientcertificates/${enc(op.id)}` };
    case 'tag':
      return { method: 'PUT', path: arnPath(op.arn), body: op.body };
    case 'untag':
      return {
        method: 'DELETE',
        path: `${arnPath(op.arn)}?${op.tagKeys.map((k) => `tagKeys=${enc(k)}`).join('&')}`,
      };
    case 'getTags':
      return { method: 'GET', path: arnPath(op.arn) };
  }
}

async function sendRaw(real: Real, call: Call, arnEncoded: boolean): Promise<Answer> {
  const r = rawRequest(call, arnEncoded);
  const { url, init } = await signRequest(real.url, r.path, {
    method: r.method,
    ...(r.body !== undefined ? { body: r.body } : {}),
    accessKeyId: call.accessKeyId,
    secretAccessKey: call.secretAccessKey,
    region: call.region,
  });
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // compared as text
  }
  const type = res.headers.get('x-amzn-errortype');
  return {
    status: res.status,
    via: 'raw',
    requestId: res.headers.get('x-amzn-requestid'),
    ...(type
      ? { error: type.split(':')[0]!, message: (body as { message?: string } | undefined)?.message }
      : {}),
    body,
  };
}

/** A plain object of string values without `__proto__` (what the SDK's serialisers can carry). */
function sdkMap(v: unknown): Record<string, string> | undefined | false {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '__proto__' || typeof x !== 'string') return false;
    out[k] = x;
  }
  return out;
}

function parsedObject(b: Body): Record<string, unknown> | false {
  if (typeof b !== 'string') return false;
  try {
    const v: unknown = JSON.parse(b);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : false;
  } catch {
    return false;
  }
}

const onlyKeys = (o: Record<string, unknown>, keys: string[]) =>
  Object.keys(o).every((k) => keys.includes(k));

/** The SDK command for a call, or undefined when the SDK cannot express it exactly. */
function sdkCommand(call: Call): { send: (c: APIGatewayClient) => Promise<unknown> } | undefined {
  const op = call.op;
  const idOk = (id: string) => id !== '' && id !== '.' && id !== '..';
  switch (op.op) {
    case 'generate': {
      const b = parsedObject(op.body);
      if (!b || !onlyKeys(b, ['description', 'tags'])) return undefined;
      const tags = sdkMap(b.tags);
      if (tags === false || (b.description !== undefined && typeof b.description !== 'string'))
        return undefined;
      const input = { description: b.description as string | undefined, tags };
      return { send: (c) => c.send(new apigw.GenerateClientCertificateCommand(input)) };
    }
    case 'get':
      return idOk(op.id)
        ? { send: (c) => c.send(new apigw.GetClientCertificateCommand({ clientCertificateId: op.id })) }
        : undefined;
    case 'delete':
      return idOk(op.id)
        ? { send: (c) => c.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: op.id })) }
        : undefined;
    case 'list': {
      if (op.limit !== undefined && String(Number.parseInt(op.limit, 10)) !== op.limit) return undefined;
      const input = {
        ...(op.limit !== undefined ? { limit: Number(op.limit) } : {}),
        ...(op.position !== undefined ? { position: op.position } : {}),
      };
      return { send: (c) => c.send(new apigw.GetClientCertificatesCommand(input)) };
    }
    case 'update': {
      const b = parsedObject(op.body);
      if (!idOk(op.id) || !b || !onlyKeys(b, ['patchOperations'])) return undefined;
      const ops = b.patchOperations;
      if (ops !== undefined && !Array.isArray(ops)) return undefined;
      const patchOperations: { op: string; path: string; value?: string }[] = [];
      for (const p of (ops ?? []) as unknown[]) {
        const q = p as Record<string, unknown>;
        if (typeof p !== 'object' || p === null || !onlyKeys(q, ['op', 'path', 'value'])) return undefined;
        if (typeof q.op !== 'string' || typeof q.path !== 'string') return undefined;
        if (q.value !== undefined && typeof q.value !== 'string') return undefined;
        patchOperations.push({
          op: q.op,
          path: q.path,
          ...(q.value !== undefined ? { value: q.value } : {}),
        });
      }
      const input = { clientCertificateId: op.id, ...(ops !== undefined ? { patchOperations } : {}) };
      return { send: (c) => c.send(new apigw.UpdateClientCertificateCommand(input as never)) };
    }
    case 'tag': {
      const b = parsedObject(op.body);
      if (op.arn === '' || !b || !onlyKeys(b, ['tags'])) return undefined;
      const tags = sdkMap(b.tags);
      if (!tags) return undefined;
      return { send: (c) => c.send(new apigw.TagResourceCommand({ resourceArn: op.arn, tags })) };
    }
    case 'untag':
      if (op.arn === '' || op.tagKeys.length === 0) return undefined;
      return {
        send: (c) => c.send(new apigw.UntagResourceCommand({ resourceArn: op.arn, tagKeys: op.tagKeys })),
      };
    case 'getTags':
      if (op.arn === '') return undefined;
      return { send: (c) => c.send(new apigw.GetTagsCommand({ resourceArn: op.arn })) };
  }
}

const seconds = (d: unknown) => (d instanceof Date ? d.getTime() / 1000 : d);

/** The SDK's parsed output turned back into the wire's shape (dates as epoch seconds, no $metadata). */
function fromSdk(out: unknown): unknown {
  if (out === undefined || out === null) return undefined;
  const { $metadata: _m, ...rest } = out as Record<string, unknown>;
  const rec = (r: Record<string, unknown>) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) {
      if (v === undefined) continue;
      // The SDK keeps a `__proto__` tag on some paths (lists) and not on others: it is compared over raw HTTP only.
      o[k] =
        k === 'tags'
          ? Object.fromEntries(Object.entries(v as object).filter(([t]) => t !== '__proto__'))
          : k.endsWith('Date')
            ? seconds(v)
            : v;
    }
    return o;
  };
  if ('items' in rest) {
    return rec({
      item: (rest.items as Record<string, unknown>[]).map(rec),
      position: rest.position,
    });
  }
  const r = rec(rest);
  return Object.keys(r).length === 0 ? undefined : r;
}

async function sendSdk(
  real: Real,
  call: Call,
  cmd: { send: (c: APIGatewayClient) => Promise<unknown> },
): Promise<Answer> {
  try {
    const out = (await cmd.send(real.client(call))) as { $metadata: { httpStatusCode?: number } };
    return { status: out.$metadata.httpStatusCode ?? 0, via: 'sdk', body: fromSdk(out) };
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    if (e.$metadata?.httpStatusCode === undefined) throw err;
    return { status: e.$metadata.httpStatusCode, error: e.name, message: e.message, via: 'sdk' };
  }
}

// ---- comparing an answer with the model -------------------------------------------------------------

export class Divergence extends Error {
  override name = 'Divergence';
}

/** Entries of a wire tag map (own keys, `__proto__` included), sorted. */
const entriesOf = (m: Map<string, string> | Record<string, unknown>) =>
  (m instanceof Map ? [...m.entries()] : Object.entries(m)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** The SDK cannot be relied on to carry a `__proto__` tag key (some of its deserialisers assign into `{}`). */
function visibleTags(tags: Map<string, string>, via: Answer['via']): Map<string, string> {
  if (via === 'raw') return tags;
  const m = new Map(tags);
  m.delete('__proto__');
  return m;
}

function recordJson(r: ModelRecord, via: Answer['via']): Record<string, unknown> {
  const tags = visibleTags(r.tags, via);
  return {
    clientCertificateId: r.id,
    ...(r.description !== undefined ? { description: r.description } : {}),
    pemEncodedCertificate: r.pem,
    createdDate: r.createdDate,
    expirationDate: r.expirationDate,
    // Present when the record has tags on the wire (through the SDK, maybe `{}` if `__proto__` was the only one).
    ...(r.tags.size > 0 ? { tags: Object.fromEntries(entriesOf(tags)) } : {}),
  };
}

/** A canonical form for deep comparison: object keys sorted, own `__proto__` keys kept. */
function canon(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'object' && v !== null)
    return entriesOf(v as Record<string, unknown>).map(([k, x]) => [k, canon(x)]);
  return v;
}

function same(actual: unknown, expected: unknown): boolean {
  return JSON.stringify(canon(actual)) === JSON.stringify(canon(expected));
}

function check(ok: boolean, what: string, actual: unknown, expected: unknown) {
  if (!ok) {
    throw new Divergence(`${what}\n  expected: ${show(expected)}\n  actual:   ${show(actual)}`);
  }
}
const show = (v: unknown) => {
  const s =
    JSON.stringify(canon(v), (_k, x: unknown) =>
      typeof x === 'string' && x.length > 60 ? `${x.slice(0, 30)}...(${x.length})` : x,
    ) ?? String(v);
  return s.length > 600 ? `${s.slice(0, 600)}...` : s;
};

/**
 * Compares one answer with the prediction; returns what the model must learn from it (the created
 * record, the position token). Throws a Divergence naming the difference.
 */
export function compare(
  call: Call,
  p: Prediction,
  a: Answer,
  window: { before: number; after: number },
): { record?: ModelRecord; position?: string } {
  const e: Expected = p.expected;
  if (a.via === 'raw') check(!!a.requestId, 'x-amzn-RequestId header', a.requestId, 'present');
  if ('error' in e) {
    check(
      a.status === e.status && a.error === e.error,
      'status and error type',
      `${a.status} ${a.error ?? ''}: ${a.message ?? show(a.body)}`,
      `${e.status} ${e.error}`,
    );
    const m = e.message;
    const okMessage =
      typeof a.message === 'string' &&
      a.message.length > 0 &&
      (m === null || (typeof m === 'string' ? a.message === m : a.message.startsWith(m.prefix)));
    check(okMessage, 'message', a.message, m ?? '(any message)');
    if (a.via === 'raw')
      check(same(a.body, { message: a.message }), 'error body is {"message"}', a.body, '{message}');
    return {};
  }
  check(
    a.status === e.status && a.error === undefined,
    'status',
    `${a.status} ${a.error ?? ''} ${a.message ?? ''}`,
    e.status,
  );
  if ('empty' in e) {
    check(a.body === undefined, 'empty body', a.body, '');
    return {};
  }
  if ('record' in e) {
    check(same(a.body, recordJson(e.record, a.via)), 'record', a.body, recordJson(e.record, a.via));
    return {};
  }
  if ('tags' in e) {
    const tags = Object.fromEntries(entriesOf(visibleTags(e.tags, a.via)));
    check(same(a.body, { tags }), 'tags', a.body, { tags });
    return {};
  }
  if ('list' in e) {
    const body = a.body as { item?: unknown; position?: unknown } | undefined;
    const item = e.list.map((r) => recordJson(r, a.via));
    check(
      typeof body === 'object' && same(body.item, item) && (typeof body.position === 'string') === e.more,
      'list page',
      body,
      { item, position: e.more ? '(a token)' : undefined },
    );
    check(onlyFields(body, ['item', 'position']), 'list fields', body, ['item', 'position']);
    return e.more ? { position: body!.position as string } : {};
  }
  // 201: the model knows description and tags; id, dates and PEM are the service's to make, within rules.
  const g = e.generated;
  const b = a.body as Record<string, unknown> | undefined;
  check(typeof b === 'object', '201 body', b, 'a record');
  const id = b!.clientCertificateId;
  check(typeof id === 'string' && ID.test(id), 'clientCertificateId', id, ID.source);
  const created = b!.createdDate as number;
  check(
    Number.isInteger(created) &&
      created >= Math.floor(window.before / 1000) - 1 &&
      created <= Math.ceil(window.after / 1000) + 1,
    'createdDate is now, in whole seconds',
    created,
    window,
  );
  check(
    b!.expirationDate === created + VALIDITY_SECONDS,
    'expirationDate = createdDate + 365 days',
    b!.expirationDate,
    created + VALIDITY_SECONDS,
  );
  const pem = b!.pemEncodedCertificate;
  check(
    typeof pem === 'string' &&
      /^-----BEGIN CERTIFICATE-----\r\n([A-Za-z0-9+/=]{64}\r\n)*[A-Za-z0-9+/=]{1,64}\r\n-----END CERTIFICATE-----$/.test(
        pem,
      ),
    'PEM shape',
    pem,
    'PEM, 64-character lines, CRLF',
  );
  const x = new X509Certificate(pem as string);
  check(
    x.subject === 'C=US\nL=Seattle\nCN=ApiGateway' && x.issuer === x.subject,
    'issuer = subject',
    x.subject,
    'C=US, L=Seattle, CN=ApiGateway',
  );
  check(x.verify(x.publicKey), 'self-signed', false, true);
  check(
    Date.parse(x.validFrom) / 1000 === created && Date.parse(x.validTo) / 1000 === created + VALIDITY_SECONDS,
    'certificate validity = createdDate .. expirationDate',
    [x.validFrom, x.validTo],
    [created, created + VALIDITY_SECONDS],
  );
  const record: ModelRecord = {
    id: id as string,
    ...(g.description !== undefined ? { description: g.description } : {}),
    tags: g.tags,
    createdDate: created,
    expirationDate: created + VALIDITY_SECONDS,
    pem: pem as string,
  };
  check(same(b, recordJson(record, a.via)), 'the generated record', b, recordJson(record, a.via));
  return { record };
}

const onlyFields = (b: unknown, keys: string[]) =>
  typeof b === 'object' && b !== null && Object.keys(b).every((k) => keys.includes(k));

// ---- the fast-check command ----------------------------------------------------------------------------

/** A per-run cap on Generates: key generation costs ~200 ms of CPU each. */
export const GENERATES_PER_RUN = 5;

export class StepCommand implements fc.AsyncCommand<World['model'], World['real']> {
  resolved?: string;
  constructor(readonly spec: StepSpec) {}
  check(m: ClientCertificatesModel): boolean {
    return this.spec.step.op !== 'generate' || generatesSoFar(m) < GENERATES_PER_RUN;
  }
  async run(m: ClientCertificatesModel, real: Real): Promise<void> {
    if (this.spec.step.op === 'generate') bumpGenerates(m);
    let made = await this.once(m, real, this.spec);
    // A walk: follow the positions handed out, page after page, as the SDK paginators and CLI do.
    const s = this.spec.step;
    for (let page = 0; s.op === 'list' && page < (s.follow ?? 0) && made.position !== undefined; page++) {
      const next: Step = {
        op: 'list',
        ...(s.limit !== undefined ? { limit: s.limit } : {}),
        position: { lit: made.position },
      };
      made = await this.once(m, real, { ...this.spec, step: next });
    }
  }
  private async once(m: ClientCertificatesModel, real: Real, spec: StepSpec) {
    const { call, arnEncoded } = resolve(m, spec);
    this.resolved = describeCall(call, arnEncoded);
    const p = m.predict(call);
    const sdk = spec.sdk ? sdkCommand(call) : undefined;
    const before = Date.now();
    const a = sdk ? await sendSdk(real, call, sdk) : await sendRaw(real, call, arnEncoded);
    const after = Date.now();
    real.stats.count(
      call.op.op === 'list' && call.op.position !== undefined ? 'list(position)' : call.op.op,
      a.status,
      a.error,
    );
    if (a.status >= 500) throw new Divergence(`5xx: ${a.status} ${a.error}: ${a.message} (${this.resolved})`);
    try {
      const made = compare(call, p, a, { before, after });
      if (made.record && m.records(p.tenant!).has(made.record.id)) {
        throw new Divergence(`Generate answered an id already in use: ${made.record.id}`);
      }
      m.commit(call, p, made);
      return made;
    } catch (err) {
      if (err instanceof Divergence) err.message = `${this.resolved} via ${a.via}: ${err.message}`;
      throw err;
    }
  }
  toString(): string {
    return `step(${JSON.stringify(this.spec, bodyReplacer)})${this.resolved ? ` /* ${this.resolved} */` : ''}`;
  }
}

const generates = new WeakMap<ClientCertificatesModel, number>();
const generatesSoFar = (m: ClientCertificatesModel) => generates.get(m) ?? 0;
const bumpGenerates = (m: ClientCertificatesModel) => generates.set(m, generatesSoFar(m) + 1);

function bodyReplacer(_k: string, v: unknown) {
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (typeof v === 'string' && v.length > 80) {
    const first = v[0]!;
    return v === first.repeat(v.length) ? { repeat: first, times: v.length } : v;
  }
  return v;
}

export function describeCall(call: Call, arnEncoded = true): string {
  const r = rawRequest(call, arnEncoded);
  const body =
    r.body === undefined
      ? ''
      : ` ${typeof r.body === 'string' ? JSON.stringify(r.body, bodyReplacer) : `<${r.body.length} bytes>`}`;
  const shortBody = body.length > 300 ? `${body.slice(0, 300)}...` : body;
  return `${call.accessKeyId}@${call.region} ${r.method} ${r.path.length > 200 ? `${r.path.slice(0, 200)}...` : r.path}${shortBody}`;
}

/** Rebuilds a step from its printed form (regression tests keep the shrunk sequences as data). */
export const step = (spec: StepSpec) => new StepCommand(spec);

/** Runs one sequence from an empty service, then walks every tenant's list to compare the final state. */
export async function runSequence(
  real: Real,
  cmds: Iterable<fc.AsyncCommand<World['model'], Real>>,
): Promise<void> {
  await real.reset();
  const model = newModel();
  real.stats.runs++;
  await fc.asyncModelRun(() => ({ model, real }), cmds);
  await finalCheck(model, real);
}

/** Every tenant's full listing equals the model's records (nothing created, lost or changed behind its back). */
async function finalCheck(model: ClientCertificatesModel, real: Real) {
  const seen = new Set<string>();
  for (const cred of CREDENTIALS) {
    if (seen.has(cred.accountId)) continue;
    seen.add(cred.accountId);
    for (const region of REAL_REGIONS) {
      const call: Call = { ...cred, region, op: { op: 'list', limit: '500' } };
      const p = model.predict(call);
      const a = await sendRaw(real, call, true);
      real.stats.count('list(final)', a.status, a.error);
      try {
        compare(call, p, a, { before: 0, after: 0 });
      } catch (err) {
        if (err instanceof Divergence)
          err.message = `final state of ${cred.accountId}/${region}: ${err.message}`;
        throw err;
      }
    }
  }
}
