import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CredentialStore, parseCredentials, type Credential } from '../api/auth/credentials.js';
import { SigV4Verifier } from '../api/auth/sigv4.js';
import { UnrecognizedClientError, InvalidSignatureError } from '../shared/errors.js';
import {
  killAll,
  serviceEnv,
  spawnApi,
  spawnWorker,
  type LogLine,
  type ServiceProcess,
} from '../devtools/processes.js';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';
import { signRequest, signedFetch } from '../devtools/signed-fetch.js';

const OLD = { accessKeyId: 'AKIAOLD', secretAccessKey: 'old-secret-1', accountId: '111111111111' };
const KEEP = { accessKeyId: 'AKIAKEEP', secretAccessKey: 'keep-secret-1', accountId: '222222222222' };
const KEEP2 = { ...KEEP, secretAccessKey: 'keep-secret-2' };
const NEW = { accessKeyId: 'AKIANEW', secretAccessKey: 'new-secret-1', accountId: '333333333333' };

type Entry = { accessKeyId: string; secretAccessKey: string; accountId: string };

/** A signed GetClientCertificates with `c`'s keys: the status and the error type, if any. */
async function list(url: string, c: Entry): Promise<{ status: number; type: string | null }> {
  const res = await signedFetch(url, '/clientcertificates', {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
  });
  await res.arrayBuffer();
  return { status: res.status, type: res.headers.get('x-amzn-errortype') };
}

/** Sends SIGHUP and waits for the API's next log line with message `msg`. */
async function hup(api: ServiceProcess, msg: string): Promise<LogLine> {
  const count = () => api.logs.filter((l) => l.msg === msg).length;
  const before = count();
  api.signal('SIGHUP');
  await waitFor(() => count() > before, 10_000).catch((err: Error) => {
    const state = api.alive ? 'the API is running' : 'the API exited';
    throw new Error(`no "${msg}" after SIGHUP (${err.message}); ${state}`);
  });
  return api.logs.filter((l) => l.msg === msg)[before]!;
}

describe('credentials reloaded on SIGHUP', () => {
  let redis: TestRedis;
  let dir: string;
  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'cc-creds-reload-'));
  });
  after(async () => {
    await killAll();
    await redis?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a new file takes effect without a restart; a broken one is logged and the old credentials stay', async () => {
    const file = join(dir, 'credentials.json');
    writeFileSync(file, JSON.stringify([OLD, KEEP]), { mode: 0o600 });
    const env = serviceEnv({ url: redis.url }, { CREDENTIALS_FILE: file, GENERATE_TIMEOUT_MS: '30000' });
    const [api] = await Promise.all([spawnApi(env), spawnWorker(env)]);

    assert.deepEqual(await list(api.url, OLD), { status: 200, type: null });
    assert.deepEqual(await list(api.url, KEEP), { status: 200, type: null });
    assert.deepEqual(await list(api.url, NEW), { status: 403, type: 'UnrecognizedClientException' });

    // OLD removed, NEW added, KEEP's secret rotated; NEW's account limited to one certificate.
    writeFileSync(file, JSON.stringify([KEEP2, { ...NEW, clientCertificateLimit: 1 }]));
    const reloaded = await hup(api, 'credentials reloaded');
    assert.equal(reloaded.level, 30);
    assert.equal(reloaded.credentials, 2);
    assert.deepEqual(
      [reloaded.added, reloaded.removed, reloaded.changed],
      [['AKIANEW'], ['AKIAOLD'], ['AKIAKEEP']],
    );
    assert.ok(!JSON.stringify(reloaded).includes('secret-'), 'a secret in the log');

    assert.deepEqual(await list(api.url, NEW), { status: 200, type: null });
    assert.deepEqual(await list(api.url, OLD), { status: 403, type: 'UnrecognizedClientException' });
    // The old secret's signing key was cached for this access key: it must not verify any more.
    assert.deepEqual(await list(api.url, KEEP), { status: 403, type: 'InvalidSignatureException' });
    assert.deepEqual(await list(api.url, KEEP2), { status: 200, type: null });
    // NEW's account and its limit from the file: one certificate, then 429.
    const gen = (c: Entry) =>
      signedFetch(api.url, '/clientcertificates', {
        method: 'POST',
        body: '{}',
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey,
      });
    const first = await gen(NEW);
    assert.equal(first.status, 201, await first.text());
    const second = await gen(NEW);
    assert.equal(second.status, 429);
    assert.equal(second.headers.get('x-amzn-errortype'), 'LimitExceededException');
    await second.arrayBuffer();

    // Broken files of every kind: each is logged as an error and nothing changes.
    const broken: [string, (() => void) | string, RegExp][] = [
      ['a syntax error', `[{"accessKeyId":"AKIANEW","secretAccessKey":new-secret-1}]`, /is not valid JSON/],
      [
        'an invalid entry',
        JSON.stringify([{ ...NEW, accountId: '42' }]),
        /entry 0: accountId must be 12 digits/,
      ],
      ['a duplicate access key', JSON.stringify([NEW, NEW]), /duplicate accessKeyId AKIANEW/],
      ['an empty file', '', /is not valid JSON/],
      ['a missing file', () => renameSync(file, `${file}.moved`), /cannot be read: ENOENT/],
    ];
    for (const [what, content, message] of broken) {
      if (typeof content === 'string') writeFileSync(file, content);
      else content();
      const line = await hup(api, 'credentials not reloaded: keeping the credentials in force');
      assert.equal(line.level, 50, what);
      assert.match(String(line.err), message, what);
      assert.equal(line.credentials, 2, what);
      assert.ok(!JSON.stringify(line).includes('secret-'), `${what}: a secret in the log`);
      assert.ok(api.alive, `${what}: SIGHUP stopped the API`);
      assert.deepEqual(await list(api.url, NEW), { status: 200, type: null }, what);
      assert.deepEqual(await list(api.url, KEEP2), { status: 200, type: null }, what);
      assert.deepEqual(await list(api.url, OLD), { status: 403, type: 'UnrecognizedClientException' }, what);
    }
  });

  it('without CREDENTIALS_FILE a SIGHUP changes nothing and the API keeps running', async () => {
    const env = serviceEnv({ url: redis.url });
    const api = await spawnApi(env);
    const line = await hup(api, 'credentials not reloaded: CREDENTIALS_FILE is not set');
    assert.equal(line.level, 40);
    assert.ok(api.alive);
    assert.deepEqual(await list(api.url, { accessKeyId: 'test', secretAccessKey: 'test', accountId: '' }), {
      status: 200,
      type: null,
    });
  });
});

describe('SigV4Verifier.useCredentials', () => {
  const store = (...entries: Entry[]) => new CredentialStore(parseCredentials(JSON.stringify(entries)));
  const request = async (c: Entry) => {
    const { url, init } = await signRequest('http://127.0.0.1:1', '/clientcertificates', {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
    });
    const headers = new Headers(init.headers);
    headers.set('host', '127.0.0.1:1');
    return { method: 'GET', url: new URL(url), headers, body: async () => new Uint8Array(0) };
  };

  it('verifies against the new store at once, never with a key derived from a replaced secret', async () => {
    const v = new SigV4Verifier(store(OLD, KEEP));
    assert.equal((await v.verify(await request(KEEP))).accountId, KEEP.accountId); // caches KEEP's key
    v.useCredentials(store(KEEP2, NEW));
    await assert.rejects(v.verify(await request(OLD)), UnrecognizedClientError);
    await assert.rejects(v.verify(await request(KEEP)), InvalidSignatureError);
    assert.equal((await v.verify(await request(KEEP2))).accountId, KEEP.accountId);
    assert.equal((await v.verify(await request(NEW))).accountId, NEW.accountId);
  });

  it('reports what a reload changes, by access key id only', () => {
    const before = store(OLD, KEEP);
    const changes = store(KEEP2, NEW).changesSince(before);
    assert.deepEqual(changes, { added: ['AKIANEW'], removed: ['AKIAOLD'], changed: ['AKIAKEEP'] });
    const same: Credential[] = parseCredentials(JSON.stringify([OLD, KEEP]));
    assert.deepEqual(new CredentialStore(same).changesSince(before), { added: [], removed: [], changed: [] });
  });
});
