import assert from 'node:assert/strict';
import { createPublicKey, sign, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BUSY_IN_FLIGHT, KeyPool } from '../worker/key-pool.js';
import { generateRsaKey, type RsaKey } from '../worker/key-source.js';
import { manualClock, settle } from './helpers/clock.js';
import { waitFor } from '../devtools/redis-server.js';

/** The key's identity: its public key, as DER hex. */
const fingerprint = (k: RsaKey) =>
  createPublicKey(k.publicKeyPem).export({ type: 'spki', format: 'der' }).toString('hex');

/** Real RSA-2048 generation that counts its calls. */
function countingGenerator() {
  const g = { calls: 0, generate: () => (g.calls++, generateRsaKey()) };
  return g;
}

/** A key whose private half signs what its public half verifies. */
function assertWorkingPair(k: RsaKey) {
  const data = Buffer.from('key pool');
  assert.ok(verify('sha256', data, k.publicKeyPem, sign('sha256', data, k.privateKey)));
  assert.equal(k.privateKey.asymmetricKeyDetails?.modulusLength, 2048);
}

/**
 * A generator the test finishes by hand, handing out real keys made beforehand, so the order in which
 * generations finish (and what the pool starts meanwhile) is decided by the test, not by timing.
 */
function manualGenerator(keys: RsaKey[]) {
  const pending: (() => void)[] = [];
  const failures: ((err: Error) => void)[] = [];
  let next = 0;
  return {
    get started() {
      return next;
    },
    get open() {
      return pending.length;
    },
    generate: () =>
      new Promise<RsaKey>((resolve, reject) => {
        const key = keys[next++];
        assert.ok(key, 'the test made too few keys');
        pending.push(() => resolve(key));
        failures.push(reject);
      }),
    /** Finishes the oldest open generation. */
    finish() {
      failures.shift();
      pending.shift()!();
    },
    fail(err: Error) {
      pending.shift();
      failures.shift()!(err);
    },
  };
}

describe('key pool', () => {
  let spare: RsaKey[] = [];
  before(async () => {
    spare = await Promise.all(Array.from({ length: 8 }, () => generateRsaKey()));
  });

  let pool: KeyPool | undefined;
  after(async () => pool?.close());

  it('fills itself to its size in the background', async () => {
    const g = countingGenerator();
    const clock = manualClock();
    pool = new KeyPool({ size: 3, generate: g.generate, clock });
    await waitFor(() => pool!.stats().ready === 3, 30_000);
    // Full: nothing more is generated, however long it waits.
    clock.advance(60_000);
    await settle();
    assert.equal(g.calls, 3);
    assert.deepEqual(pool.stats(), { ready: 3, generating: 0, waiting: 0, hits: 0, misses: 0 });
    await pool.close();
  });

  it('answers a take from the pool at once, then refills the key it gave away', async () => {
    const g = countingGenerator();
    pool = new KeyPool({ size: 2, generate: g.generate });
    await waitFor(() => pool!.stats().ready === 2, 30_000);
    const key = await pool.take();
    assertWorkingPair(key);
    assert.equal(pool.stats().hits, 1);
    assert.equal(pool.stats().ready, 1);
    await waitFor(() => pool!.stats().ready === 2, 30_000);
    assert.equal(g.calls, 3);
    await pool.close();
  });

  it('never hands out the same key twice, across pooled and freshly generated keys', async () => {
    pool = new KeyPool({ size: 3 });
    await waitFor(() => pool!.stats().ready === 3, 30_000);
    // 3 from the pool, the rest generated while waiting; some taken at once, some one by one.
    const keys = await Promise.all(Array.from({ length: 6 }, () => pool!.take()));
    for (let i = 0; i < 3; i++) keys.push(await pool.take());
    const seen = new Set(keys.map(fingerprint));
    assert.equal(seen.size, keys.length);
    assert.equal(new Set(keys.map((k) => k.privateKey)).size, keys.length);
    keys.forEach(assertWorkingPair);
    const s = pool.stats();
    assert.equal(s.hits + s.misses, 9);
    assert.ok(s.hits >= 3, `at least the 3 pooled keys were hits: ${JSON.stringify(s)}`);
    await pool.close();
  });

  it('take() on an empty pool waits for a generation; a pool of size 0 never keeps keys', async () => {
    const g = countingGenerator();
    const clock = manualClock();
    pool = new KeyPool({ size: 0, generate: g.generate, clock });
    clock.advance(60_000);
    await settle();
    assert.equal(g.calls, 0, 'size 0: no background generation');
    const [a, b] = await Promise.all([pool.take(), pool.take()]);
    assertWorkingPair(a);
    assertWorkingPair(b);
    assert.notEqual(fingerprint(a), fingerprint(b));
    assert.deepEqual(pool.stats(), { ready: 0, generating: 0, waiting: 0, hits: 0, misses: 2 });
    assert.equal(g.calls, 2);
    await pool.close();
  });

  it('gives finished keys to waiting takes before the pool, and starts no refill while anyone waits', async () => {
    const g = manualGenerator(spare);
    pool = new KeyPool({ size: 4, refillParallelism: 1, refillDelayMs: 0, generate: g.generate });
    assert.equal(g.started, 1, 'one refill generation at a time');

    const taken: RsaKey[] = [];
    const takes = [pool.take(), pool.take(), pool.take()].map((p) => p.then((k) => taken.push(k)));
    // The refill under way counts for the first waiter; the two others get one each, no more.
    assert.equal(g.started, 3);
    assert.equal(pool.stats().waiting, 3);

    g.finish();
    await new Promise((r) => setImmediate(r));
    assert.equal(taken.length, 1, 'the finished refill went to the oldest waiter');
    assert.equal(pool.stats().ready, 0);
    assert.equal(g.started, 3, 'no refill while two still wait');

    g.finish();
    g.finish();
    await Promise.all(takes);
    assert.deepEqual(
      taken.map(fingerprint),
      spare.slice(0, 3).map(fingerprint),
      'waiters served in order, each with its own key',
    );
    // Nobody waits any more: refilling resumes, one at a time.
    assert.equal(g.started, 4);
    assert.equal(g.open, 1);
    g.finish();
    await waitFor(() => pool!.stats().ready === 1);
    assert.equal(g.started, 5);
    g.finish();
    await waitFor(() => pool!.stats().ready === 2);
    const closing = pool.close();
    g.finish(); // the generation running at close finishes; its key is dropped, never handed out
    await closing;
    assert.equal(pool.stats().ready, 0);
    assert.equal(g.started, 6);
  });

  it('waits until takes stop for refillDelayMs before refilling', async () => {
    const g = manualGenerator(spare);
    const clock = manualClock();
    pool = new KeyPool({ size: 1, refillDelayMs: 400, generate: g.generate, clock });
    g.finish();
    await waitFor(() => pool!.stats().ready === 1);
    assert.equal(g.started, 1);
    await pool.take();
    assert.equal(g.started, 1, 'no refill right after a take');
    clock.advance(399);
    await settle();
    assert.equal(g.started, 1, 'no refill before the pause is over');
    clock.advance(1);
    await settle();
    assert.equal(g.started, 2, 'refilled once the pause is over');
    const closing = pool.close();
    g.finish();
    await closing;
  });

  it('reports a failed generation to the waiting take and retries refilling after a pause', async () => {
    const g = manualGenerator(spare);
    const errors: unknown[] = [];
    const clock = manualClock();
    pool = new KeyPool({
      size: 1,
      generate: g.generate,
      retryDelayMs: 1500,
      onError: (e) => errors.push(e),
      clock,
    });
    const take = pool.take();
    g.fail(new Error('openssl said no'));
    await assert.rejects(take, /openssl said no/);
    assert.equal(errors.length, 1);
    clock.advance(1499);
    await settle();
    assert.equal(g.started, 1, 'no refill during the pause');
    clock.advance(1);
    await settle();
    assert.equal(g.started, 2, 'refilling again once the pause is over');
    g.finish();
    await waitFor(() => pool!.stats().ready === 1);
    await pool.close();
  });

  it('resumes refilling when the pause ends even if the wall clock lags the timer clock', async () => {
    // Timers run on a monotonic clock and Date.now() on the wall clock: a timer can fire while
    // Date.now() still reads a millisecond or two before its due time (seen in CI). Simulate 50 ms.
    const g = manualGenerator(spare);
    const clock = manualClock();
    pool = new KeyPool({ size: 1, generate: g.generate, retryDelayMs: 300, clock });
    g.fail(new Error('openssl said no'));
    await settle();
    assert.equal(g.started, 1);
    clock.lag = 50;
    clock.advance(300);
    await settle();
    assert.equal(g.started, 2, 'the pause ended when its timer fired');
    g.finish();
    await waitFor(() => pool!.stats().ready === 1);
    await pool.close();
  });

  it('close() stops refilling, drops unused keys and refuses later takes', async () => {
    const g = countingGenerator();
    const clock = manualClock();
    pool = new KeyPool({ size: 2, generate: g.generate, clock });
    await waitFor(() => pool!.stats().ready === 2, 30_000);
    await pool.take();
    await pool.close();
    assert.equal(pool.stats().ready, 0);
    assert.equal(pool.stats().generating, 0);
    const calls = g.calls;
    clock.advance(60_000);
    await settle();
    assert.equal(g.calls, calls, 'nothing generated after close');
    await assert.rejects(pool.take(), /key pool is closed/);
  });
});

describe('key pool and bulk jobs', () => {
  it('serves the waiting caller first: a bulk job takes a pooled key only from a full pool', async () => {
    const spare = await Promise.all(Array.from({ length: 6 }, () => generateRsaKey()));
    const g = manualGenerator(spare);
    const clock = manualClock();
    const pool = new KeyPool({ size: 2, generate: g.generate, clock, refillParallelism: 1 });
    try {
      // Filling: one refill at a time.
      assert.equal(g.started, 1);
      g.finish();
      await settle();
      assert.equal(pool.stats().ready, 1);
      // Not full: the bulk job's key is a generation of its own, and the pooled key stays.
      const bulkTake = pool.take('bulk');
      await settle();
      assert.equal(pool.stats().ready, 1);
      assert.equal(g.open, 2, 'the refill and the bulk generation');
      g.finish(); // the refill: the pool is full
      g.finish(); // the bulk job's own key
      const bulkKey = await bulkTake;
      assertWorkingPair(bulkKey);
      await settle();
      assert.equal(pool.stats().ready, 2);
      // An interactive caller takes from the pool at once.
      const interactive = await pool.take('interactive');
      assert.notEqual(fingerprint(interactive), fingerprint(bulkKey));
      assert.equal(pool.stats().ready, 1);
      // Full again, the surplus goes to a bulk job without a generation of its own.
      clock.advance(1000);
      await settle();
      g.finish();
      await settle();
      assert.equal(pool.stats().ready, 2);
      const started = g.started;
      const surplus = await pool.take('bulk');
      assert.equal(g.started, started + 1, 'only the refill of the key taken');
      assert.equal(pool.stats().ready, 1);
      const keys = [bulkKey, interactive, surplus].map(fingerprint);
      assert.equal(new Set(keys).size, 3, 'every key handed out once');
      while (g.open) g.finish();
    } finally {
      await pool.close();
    }
  });
});

describe('key pool and busy accounts', () => {
  it('keeps its last keys for accounts with little in flight, and refills beside a flood', async () => {
    const spare = await Promise.all(Array.from({ length: 12 }, () => generateRsaKey()));
    const g = manualGenerator(spare);
    const clock = manualClock();
    const pool = new KeyPool({ size: 4, reserve: 2, generate: g.generate, clock, refillParallelism: 1 });
    const handedOut: RsaKey[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        g.finish();
        await settle();
      }
      assert.equal(pool.stats().ready, 4);
      // A busy account (a burst, or a flood) takes from the pool down to the reserve.
      handedOut.push(await pool.take('interactive', BUSY_IN_FLIGHT));
      handedOut.push(await pool.take('interactive', BUSY_IN_FLIGHT + 5));
      assert.equal(pool.stats().ready, 2);
      // Then its jobs generate their own keys: the reserve stays, and they do not hold refilling back.
      const started = g.started;
      const own = pool.take('interactive', BUSY_IN_FLIGHT);
      await settle();
      assert.equal(pool.stats().ready, 2, 'the reserve is not touched');
      assert.equal(g.started, started + 1, "the busy job's own generation");
      clock.advance(1000);
      await settle();
      assert.equal(g.started, started + 2, 'refilling goes on beside it');
      g.finish(); // the busy job's own key
      handedOut.push(await own);
      g.finish(); // the refill
      await settle();
      assert.equal(pool.stats().ready, 3);
      // A polite account's job (at most one in flight before it) takes a pooled key at once.
      const ready = pool.stats().ready;
      handedOut.push(await pool.take('interactive', 1));
      handedOut.push(await pool.take('interactive', 0));
      assert.equal(pool.stats().ready, ready - 2);
      for (const k of handedOut) assertWorkingPair(k);
      assert.equal(new Set(handedOut.map(fingerprint)).size, handedOut.length, 'every key handed out once');
      while (g.open) g.finish();
    } finally {
      await pool.close();
    }
  });
});
