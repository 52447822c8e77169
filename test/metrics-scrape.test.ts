import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Tenant } from '../shared/keys.js';
import { useService } from './helpers/fixture.js';
import { waitFor } from '../devtools/redis-server.js';
import type { TestService } from '../devtools/service.js';
import { startMonitor, type Monitor } from './helpers/monitor.js';

const DAY = 24 * 3600;
const TENANTS: Tenant[] = [
  { accountId: '000000000000', region: 'us-east-1' },
  { accountId: '111111111111', region: 'eu-west-1' },
  { accountId: '222222222222', region: 'ap-south-1' },
];

/** The value of one exposition line, e.g. `certificates_expiring_within_30_days`. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Stores a record directly (no key generation): what a worker's create leaves behind. */
async function put(svc: TestService, t: Tenant, id: string, expirationDate: number): Promise<void> {
  assert.equal(await svc.store.reserve(t, id, 60_000, 0), 'reserved');
  const c = { clientCertificateId: id, pemEncodedCertificate: 'x', createdDate: 0, expirationDate, tags: {} };
  assert.equal(await svc.store.createIfReserved(t, { ...c, encryptedKey: 'x' }), 'created');
}

describe('/metrics scrapes', () => {
  const fx = useService({ workers: 0 });
  let base: Redis;
  let monitor: Monitor;
  let apiAddr: string;
  let seen: string[][] = [];
  const marks = new Set<string>();

  before(async () => {
    // The API's own connection (named cc-api): every Redis command a scrape makes arrives on it.
    const clients = (await fx.svc.redis.call('CLIENT', 'LIST')) as string;
    const line = clients.split('\n').find((l) => / name=cc-api( |$)/.test(l));
    apiAddr = / addr=(\S+)/.exec(line ?? '')![1]!;
    base = new Redis(fx.redis.url);
    base.on('error', () => undefined);
    monitor = await startMonitor(fx.redis.url);
    monitor.on('error', () => undefined);
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      // Every connection PINGs Redis every 2 s to find a dead socket (probeLiveness in shared/redis.ts): not a
      // scrape's cost, and whether one falls inside a scrape's window is chance.
      if (source === apiAddr && args[0]?.toLowerCase() !== 'ping') seen.push(args);
      else if (args[0]?.toLowerCase() === 'echo' && args[1]?.startsWith('scrape-mark-')) marks.add(args[1]);
    });
  });
  after(() => {
    monitor.disconnect();
    base.disconnect();
  });

  /**
   * Resolves once MONITOR has streamed every command Redis ran before now: MONITOR's stream trails the
   * replies, but it keeps Redis's order, so a marker sent now arrives after all of them.
   */
  async function monitorCaughtUp(): Promise<void> {
    const mark = `scrape-mark-${marks.size}-${Date.now()}`;
    await base.echo(mark);
    await waitFor(() => marks.has(mark), 10_000, 5);
  }

  /** Scrapes once; returns the text and the Redis commands the API sent for it. */
  async function scrape(): Promise<{ text: string; commands: string[][] }> {
    await monitorCaughtUp();
    seen = [];
    const res = await fetch(`${fx.svc.api.url}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    await monitorCaughtUp();
    return { text, commands: seen };
  }

  it('costs the same Redis commands for 5 certificates as for 50, across tenants, and counts them exactly', async () => {
    const now = Math.floor(Date.now() / 1000);
    let n = 0;
    const add = async (count: number) => {
      for (let i = 0; i < count; i++, n++) {
        // Most due within 30 days, some later, one already past: only the first kind counts.
        const expires = n % 5 === 4 ? now + 200 * DAY : n === 0 ? now - DAY : now + ((n % 29) + 1) * DAY;
        await put(fx.svc, TENANTS[n % TENANTS.length]!, `m${String(n).padStart(5, '0')}`, expires);
      }
    };
    const due = () => Array.from({ length: n }, (_, i) => i).filter((i) => i !== 0 && i % 5 !== 4).length;

    await add(5);
    await scrape(); // the first scrape loads the queue's scripts (EVAL); later ones call them by hash
    const small = await scrape();
    assert.equal(value(small.text, 'certificates_expiring_within_30_days'), due());
    await add(45);
    const large = await scrape();
    assert.equal(value(large.text, 'certificates_expiring_within_30_days'), due());
    assert.ok(due() >= 35, `${due()} due`);

    const names = (c: { commands: string[][] }) => c.commands.map((a) => a[0]!.toLowerCase()).sort();
    assert.ok(small.commands.length > 0, 'the monitor saw the scrape');
    assert.deepEqual(names(large), names(small), 'the same commands for 50 certificates as for 5');
    assert.ok(!names(large).includes('exists'), 'no per-certificate look-up');

    // A delete takes its certificate out of the count at once.
    assert.equal(await fx.svc.store.delete(TENANTS[1]!, 'm00001'), true);
    assert.equal(value((await scrape()).text, 'certificates_expiring_within_30_days'), due() - 1);
  });
});

describe('/metrics with METRICS_TOKEN', () => {
  const fx = useService({ workers: 0, api: { metricsToken: 's3cret-token' } });

  it('answers only Authorization: Bearer <token>', async () => {
    const url = `${fx.svc.api.url}/metrics`;
    for (const authorization of [
      undefined,
      'Bearer wrong',
      'Bearer s3cret-toke',
      'Basic s3cret-token',
      's3cret-token',
    ]) {
      const res = await fetch(url, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, String(authorization));
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="metrics"');
      assert.doesNotMatch(await res.text(), /certificates_issued_total/);
    }
    const ok = await fetch(url, { headers: { authorization: 'Bearer s3cret-token' } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /certificates_issued_total 0/);
  });
});
