import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { APIGatewayClient, GenerateClientCertificateCommand } from '@aws-sdk/client-api-gateway';
import { scriptSource, SCRIPTS, type ScriptName } from '../shared/lua/index.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { waitFor } from '../devtools/redis-server.js';
import { useService } from './helpers/fixture.js';
import { startMonitor } from './helpers/monitor.js';

/** One command as Redis's MONITOR reports it: its arguments and the client that sent it. */
interface Seen {
  args: string[];
  source: string;
}

/** Our scripts by the SHA-1 EVALSHA names them with. */
const SCRIPT_BY_SHA = new Map(
  (Object.keys(SCRIPTS) as ScriptName[]).map((name) => [
    createHash('sha1').update(scriptSource(name)).digest('hex'),
    name,
  ]),
);

/** A command's name as read here: our scripts by name, BullMQ's as `bullmq`. */
function nameOf(args: string[]): string {
  const cmd = args[0]!.toLowerCase();
  if (cmd !== 'evalsha') return cmd;
  return SCRIPT_BY_SHA.get(args[1]!) ?? 'bullmq';
}

/**
 * What one Generate costs in round trips to Redis (each one a wakeup of the API or the worker and of
 * Redis: at ~40 certificates/s that is most of a certificate's CPU besides its key,
 * docs/performance.md). Read from Redis's MONITOR, by client connection.
 */
describe("one Generate's round trips to Redis", () => {
  const fx = useService({ workers: 1 });
  let client: APIGatewayClient;
  let addrOf: (name: string) => string;

  before(async () => {
    client = new APIGatewayClient({
      endpoint: fx.svc.api.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    // Warm: every script loaded on every connection, so each call below is one EVALSHA.
    await client.send(new GenerateClientCertificateCommand({}));
    const admin = createRedis(fx.redis.url, patientOptions(), 'round-trips-admin');
    const list = String(await admin.client('LIST'));
    admin.disconnect();
    addrOf = (name) => {
      const line = list.split('\n').find((l) => l.includes(` name=${name} `));
      assert.ok(line, `client ${name} connected`);
      return /addr=(\S+)/.exec(line)![1]!;
    };
  });
  after(() => {
    client.destroy();
  });

  it('the API reads and commits the certificate in one script; the worker ends the job in one transaction', async () => {
    const m = await startMonitor(fx.redis.url);
    const seen: Seen[] = [];
    m.on('monitor', (_time: string, args: string[], source: string) => seen.push({ args, source }));
    try {
      const out = await client.send(new GenerateClientCertificateCommand({ description: 'round trips' }));
      const id = out.clientCertificateId!;
      // The worker's transaction goes out once the job has completed, after the API may have answered.
      await waitFor(
        async () =>
          seen.some((s) => s.args[0]?.toLowerCase() === 'zrem' && s.args[1]?.includes(':sched:account:')),
        10_000,
      );

      // The API's request path, on its own connection (the event stream has another).
      const api = addrOf('cc-api');
      const apiCalls = seen.filter((s) => s.source.endsWith(api)).map((s) => nameOf(s.args));
      assert.ok(!apiCalls.includes('ccGet'), `no separate read of the certificate: ${apiCalls.join(', ')}`);
      const commits = seen.filter((s) => s.source.endsWith(api) && nameOf(s.args) === 'ccCommit');
      assert.equal(commits.length, 1, 'one commit');
      assert.equal(commits[0]!.args.at(-1), 'read', 'which reads the answer too');
      assert.ok(commits[0]!.args.includes(id), 'of this certificate');

      // The worker ends the job (metrics, its account's share) in one MULTI on its own connection.
      const zrem = seen.findIndex(
        (s) => s.args[0]?.toLowerCase() === 'zrem' && s.args[1]?.includes(':sched:account:'),
      );
      const from = seen[zrem]!.source;
      const before = seen.slice(0, zrem).filter((s) => s.source === from && s.source !== 'lua');
      const lastOf = (cmd: string) => before.map((s) => s.args[0]?.toLowerCase()).lastIndexOf(cmd);
      const lastMulti = lastOf('multi');
      const lastExec = lastOf('exec');
      assert.ok(lastMulti >= 0 && lastMulti > lastExec, 'the ZREM is inside a MULTI');
      const inMulti = before.slice(lastMulti + 1).map((s) => s.args[0]!.toLowerCase());
      assert.ok(
        inMulti.some((c) => c.startsWith('hincrby')),
        `with the job's metrics: ${inMulti.join(', ')}`,
      );
    } finally {
      m.disconnect();
    }
  });
});
