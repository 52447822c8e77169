import assert from 'node:assert/strict';
import { DeleteClientCertificateCommand, type APIGatewayClient } from '@aws-sdk/client-api-gateway';
import type { RedisTarget } from '../../shared/redis.js';
import { awsClient, generate } from '../../devtools/aws-client.js';
import { spawnApi, spawnWorker, type LogLine } from '../../devtools/processes.js';
import { TENANT, storeView, type StoreView } from './records.js';
import type { RedisProcess } from './redis-replicated.js';
import { waitFor } from '../../devtools/redis-server.js';

/** What six clients were told while Redis failed over under them. */
export interface LoadLog {
  /** Certificates answered 201: id → description, and when (epoch ms). */
  created: Map<string, { description: string; at: number }>;
  /** Certificates whose Delete was answered 202. */
  deleted: Set<string>;
  /** Certificates whose Delete got anything else (its outcome unknown to the caller). */
  deleteUnknown: Set<string>;
  /** Every 2xx, epoch ms, in order. */
  successes: number[];
  /** Non-2xx answers by status (network errors as 0). */
  failures: Map<number, number>;
  /** Generate failures by status and message. */
  messages: Map<string, number>;
  /** Every Generate answer, 2xx or not (network errors too), epoch ms, in order. */
  answers: number[];
}

/**
 * Six clients, each looping: Generate (a unique description), and every other certificate it got
 * a Delete, until `stop()`; every answer is recorded. Returns the log and a stop function that waits
 * for the calls in flight.
 */
export function startLoad(url: string, clients = 6): { log: LoadLog; stop: () => Promise<void> } {
  const log: LoadLog = {
    created: new Map(),
    deleted: new Set(),
    deleteUnknown: new Set(),
    successes: [],
    failures: new Map(),
    messages: new Map(),
    answers: [],
  };
  let stopping = false;
  const fail = (status: number | undefined) =>
    log.failures.set(status ?? 0, (log.failures.get(status ?? 0) ?? 0) + 1);
  const remove = async (client: APIGatewayClient, id: string) => {
    try {
      const d = await client.send(new DeleteClientCertificateCommand({ clientCertificateId: id }));
      if (d.$metadata.httpStatusCode === 202) {
        log.deleted.add(id);
        log.successes.push(Date.now());
      } else log.deleteUnknown.add(id);
    } catch (err) {
      log.deleteUnknown.add(id);
      fail((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode);
    }
  };
  const loop = async (n: number, client: APIGatewayClient) => {
    const held: string[] = []; // this client's certificates not yet deleted, oldest first
    for (let i = 0; !stopping; i++) {
      const description = `client-${n}-${i}-${Date.now()}`;
      const o = await generate(client, { description });
      log.answers.push(Date.now());
      if (!o.ok) {
        fail(o.status);
        log.messages.set(`${o.status} ${o.message}`, (log.messages.get(`${o.status} ${o.message}`) ?? 0) + 1);
        // The account's quota is full (a fast machine fills it within the scenario): free one of this client's
        // certificates, so the load goes on issuing (and can show recovery) instead of spinning on 429s.
        if (o.type === 'LimitExceededException' && held.length > 0) await remove(client, held.shift()!);
        await new Promise((r) => setTimeout(r, 100)); // no client retries in a tight loop
        continue;
      }
      const id = o.cert.clientCertificateId!;
      log.created.set(id, { description, at: Date.now() });
      log.successes.push(Date.now());
      if (i % 2 === 1) await remove(client, id);
      else held.push(id);
    }
  };
  const sdks = Array.from({ length: clients }, () => awsClient(url, { requestTimeoutMs: 30_000 }));
  const loops = sdks.map((c, n) => loop(n, c));
  return {
    log,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      for (const c of sdks) c.destroy();
    },
  };
}

/** What the store holds now against what the clients were told. */
export async function audit(log: LoadLog, view: StoreView) {
  const stored = new Map((await view.all(TENANT)).map((c) => [c.clientCertificateId, c]));
  const lost: string[] = [];
  const wrongDescription: string[] = [];
  for (const [id, { description }] of log.created) {
    if (log.deleted.has(id) || log.deleteUnknown.has(id)) continue;
    const c = stored.get(id);
    if (!c) lost.push(id);
    else if (c.description !== description) wrongDescription.push(id);
  }
  const resurrected = [...log.deleted].filter((id) => stored.has(id));
  return { stored: stored.size, lost, wrongDescription, resurrected };
}

export interface ScenarioSpec {
  /** Environment of the API and worker processes (serviceEnv(...) with the Redis variables set). */
  env: Record<string, string>;
  /** The primary to kill and the replicas that could have had its writes. */
  primary: RedisProcess;
  replicas: RedisProcess[];
  /** Where to read the store from afterwards. */
  target: RedisTarget;
  /** Runs once the primary is killed and the replicas resumed (e.g. bring the node back as a replica). */
  afterKill?: () => Promise<void>;
}

/** Certificates the load issues before the replicas are cut off (at most 30 s). */
const BEFORE_CUT = 24;
/** Generate answers, of any kind, the load gets while the replicas are cut off (at most 10 s). */
const IN_WINDOW = 12;
/** 2xx answers the load gets from the new primary once it has recovered (at most 10 s). */
const AFTER_RECOVERY = 12;

/**
 * The issue's failover scenario: six clients issuing and deleting until 24 certificates are issued; then
 * the replicas are frozen (SIGSTOP) and their links cut on the primary (CLIENT KILL TYPE replica), so
 * what the primary takes from then on exists nowhere else (stopping them alone loses nothing: the
 * data waits in their sockets' buffers); load until 12 more answers; the primary SIGKILLed and the
 * replicas resumed. Load goes on until the service answers a 2xx again (at most 20 s), then until 12 more
 * 2xx. Each step waits on what the load has done, not for a fixed time, so a fast machine is quick and a
 * slow one still does the same work.
 * @returns what the store holds against what the clients were told, and how long recovery took.
 */
export async function failoverScenario(spec: ScenarioSpec) {
  const [api, worker] = await Promise.all([spawnApi(spec.env), spawnWorker(spec.env)]);
  const load = startLoad(api.url);
  await waitFor(() => load.log.created.size >= BEFORE_CUT, 30_000, 20).catch(() => undefined);

  for (const r of spec.replicas) r.pause();
  await spec.primary.cli('CLIENT', 'KILL', 'TYPE', 'replica');
  const cutAt = Date.now();
  const answersAfter = (t: number) => load.log.answers.filter((a) => a > t).length;
  await waitFor(() => answersAfter(cutAt) >= IN_WINDOW, 10_000, 20).catch(() => undefined);
  await spec.primary.kill();
  const killedAt = Date.now();
  for (const r of spec.replicas) r.resume();
  const after = spec.afterKill?.().catch((err: unknown) => err);

  const recovered = () => load.log.successes.some((t) => t > killedAt + 200);
  await waitFor(recovered, 20_000, 100).catch(() => undefined);
  const recoveryMs = (load.log.successes.find((t) => t > killedAt + 200) ?? NaN) - killedAt;
  // When it did not recover, say what Redis looked like, for the failure message.
  const redisState = recovered()
    ? undefined
    : await Promise.all(
        spec.replicas.map(async (r) => (await r.cli('ROLE')).split('\n').slice(0, 3).join(' ')),
      ).catch((err: unknown) => String(err));
  // A little load on the new primary.
  const recoveredAt = Date.now();
  await waitFor(
    () => load.log.successes.filter((t) => t > recoveredAt).length >= AFTER_RECOVERY,
    10_000,
    20,
  ).catch(() => undefined);
  await load.stop();
  const afterKillError = await after;

  const view = storeView(spec.target, spec.env.REDIS_PREFIX!);
  try {
    const a = await audit(load.log, view);
    const inWindow = [...load.log.created.values()].filter((c) => c.at > cutAt && c.at < killedAt).length;
    const problems = [
      ...worker.logs.map((l): LogLine => ({ ...l, p: 'worker' })),
      ...api.logs.map((l): LogLine => ({ ...l, p: 'api' })),
    ]
      .filter(
        (l) =>
          (l.level ?? 0) >= (process.env.FAILOVER_DEBUG ? 20 : 40) && Date.parse(String(l.time)) > killedAt,
      )
      .map((l) =>
        `${String(l.p)} ${l.msg} ${JSON.stringify((l.err as { message?: string })?.message ?? l.reason ?? '').slice(0, 160)}`.replace(
          /gen-\d+-[a-z0-9-]+/g,
          'gen-*',
        ),
      );
    return {
      ...a,
      recoveryMs,
      inWindow,
      created: load.log.created.size,
      deleted: load.log.deleted.size,
      failures: Object.fromEntries(load.log.failures),
      messages: Object.fromEntries(load.log.messages),
      problems: [...new Set(problems)].slice(0, process.env.FAILOVER_DEBUG ? 60 : 10),
      redisState,
      afterKillError: afterKillError ? String(afterKillError) : undefined,
    };
  } finally {
    await view.close();
  }
}

type ScenarioResult = Awaited<ReturnType<typeof failoverScenario>>;

/**
 * The verdict with WAIT: every 201 still readable with its description, every 202 still deleted, the
 * quota held, and a 2xx again within 20 s of the kill.
 * @param limit the scenario's CLIENT_CERTIFICATE_LIMIT
 */
export function assertNothingLost(r: ScenarioResult, limit: number): void {
  assert.deepEqual(r.lost, [], 'certificates answered 201 are gone');
  assert.deepEqual(r.wrongDescription, []);
  assert.deepEqual(r.resurrected, [], 'deletes answered 202 were undone');
  assert.ok(r.stored <= limit, `${r.stored} certificates stored, limit ${limit}`);
  assert.ok(r.recoveryMs <= 20_000, `first 2xx ${r.recoveryMs} ms after the kill`);
  assert.ok(r.created > 10, 'the load issued too few certificates to mean anything');
}

/** The verdict without WAIT: the same scenario loses acknowledged changes, so it can tell WAIT apart. */
export function assertSomethingLost(r: ScenarioResult): void {
  assert.ok(r.inWindow > 0, 'no certificate was answered while the replicas were cut off');
  assert.ok(
    r.lost.length + r.resurrected.length > 0,
    'nothing was lost: the scenario cannot tell WAIT apart',
  );
  assert.ok(r.recoveryMs <= 20_000, `first 2xx ${r.recoveryMs} ms after the kill`);
}
