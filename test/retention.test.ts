import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { nodeArgs } from '../devtools/entry.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { BULK_JOB_CERTIFICATES } from '../shared/jobs.js';
import { useService } from './helpers/fixture.js';
import { dumpRedis } from './helpers/redis-dump.js';

/** 50 tags of the longest keys and values AWS takes, each value carrying `marker`. */
function longTags(marker: string): Record<string, string> {
  return Object.fromEntries(
    Array.from({ length: 50 }, (_, i) => [
      `k${String(i).padStart(2, '0')}${'k'.repeat(125)}`,
      `${marker}${i}`.padEnd(256, 'v'),
    ]),
  );
}

async function generate(
  base: string,
  body: unknown,
): Promise<{ clientCertificateId: string; pemEncodedCertificate: string }> {
  const res = await signedFetch(base, '/clientcertificates', { method: 'POST', body: JSON.stringify(body) });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

async function remove(base: string, id: string): Promise<void> {
  const res = await signedFetch(base, `/clientcertificates/${id}`, { method: 'DELETE' });
  assert.equal(res.status, 202, await res.text());
}

describe('nothing of a certificate is readable in Redis after its Delete', () => {
  const fx = useService({ workers: 1 });

  it('no key holds the description, a tag or the PEM once DELETE answered 202', async () => {
    const marker = `m${randomUUID().replace(/-/g, '')}`;
    const description = `description-${marker}`;
    const created = await generate(fx.svc.api.url, { description, tags: longTags(`tag-${marker}-`) });
    const pemLine = created.pemEncodedCertificate.split(/\r?\n/)[5]!;
    assert.ok(pemLine.length >= 60, pemLine);
    await remove(fx.svc.api.url, created.clientCertificateId);

    const dump = await dumpRedis(fx.svc.redis as Redis);
    const leaks: string[] = [];
    for (const { key, values } of dump) {
      for (const v of values) {
        const text = v.toString('latin1');
        if (text.includes(marker)) leaks.push(`${key}: description or tag`);
        if (text.includes(pemLine)) leaks.push(`${key}: PEM`);
      }
    }
    assert.deepEqual([...new Set(leaks)], []);
  });
});

describe("nothing of a bulk batch's certificates is readable in Redis after their Deletes", () => {
  const fx = useService({ workers: 1 });

  it('jobs of several certificates give up the description and tags once they have run', async () => {
    const marker = `m${randomUUID().replace(/-/g, '')}`;
    const dir = mkdtempSync(join(tmpdir(), 'cc-retention-'));
    try {
      const out = join(dir, 'batch.ndjson');
      // 6 certificates: jobs of BULK_JOB_CERTIFICATES (4) and 2, in the API's default account and region.
      // A process of its own (the worker runs in this one, so this test must not block).
      const child = spawn(
        process.execPath,
        [
          ...nodeArgs('scripts/bulk.ts'),
          ...['--count', '6', '--description', `description-${marker}`, '--tag', `team=tag-${marker}`],
          ...['--out', out],
        ],
        {
          cwd: new URL('..', import.meta.url).pathname,
          env: {
            ...process.env,
            REDIS_URL: fx.redis.url,
            REDIS_PREFIX: fx.svc.keys.prefix,
            LOG_LEVEL: 'silent',
            CLIENT_CERTIFICATE_LIMIT: '0',
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const [code] = (await once(child, 'close')) as [number | null];
      assert.equal(code, 0, stderr);
      assert.ok(BULK_JOB_CERTIFICATES < 6, 'the batch needs more than one job');
      const ids = readFileSync(out, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { clientCertificateId: string }).clientCertificateId);
      assert.equal(ids.length, 6);
      for (const id of ids) await remove(fx.svc.api.url, id);

      const dump = await dumpRedis(fx.svc.redis as Redis);
      const leaks = dump.filter(({ values }) => values.some((v) => v.toString('latin1').includes(marker)));
      assert.deepEqual(
        leaks.map((l) => l.key),
        [],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("one account's Generate + Delete loop does not grow Redis", () => {
  // A quota of 5 and never more than one certificate stored: what the account may keep is ~25 KB.
  const fx = useService({ workers: 1, clientCertificateLimit: 5 });
  const CYCLES = 60;
  /** The bound the loop must stay under: the events stream's few entries per job, and allocator noise. */
  const BOUND_BYTES = 2 * 1024 * 1024;

  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await fx.svc.redis.info('memory'))![1]);

  it(`${CYCLES} cycles of Generate (50 long tags) + Delete grow used_memory by less than 2 MiB`, async (t) => {
    const tags = longTags('x');
    // Warm up: BullMQ's scripts, the queue's meta keys, the first stream entries.
    for (let i = 0; i < 3; i++) {
      const c = await generate(fx.svc.api.url, { description: 'd'.repeat(1024), tags });
      await remove(fx.svc.api.url, c.clientCertificateId);
    }
    const before = await usedMemory();
    for (let i = 0; i < CYCLES; i++) {
      const c = await generate(fx.svc.api.url, { description: 'd'.repeat(1024), tags });
      await remove(fx.svc.api.url, c.clientCertificateId);
    }
    const grown = (await usedMemory()) - before;
    t.diagnostic(`used_memory grew ${(grown / 1024).toFixed(0)} KiB in ${CYCLES} cycles`);
    // Before: each completed job kept its data and its PEM for an hour, ~30 KB a cycle here (158 KB with
    // BullMQ's events copies at 600 cycles), so 60 cycles grew Redis by several MB.
    assert.ok(grown < BOUND_BYTES, `used_memory grew ${(grown / 1024).toFixed(0)} KiB in ${CYCLES} cycles`);
  });
});
