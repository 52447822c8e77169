/**
 * A conformance session: one redis-server, the API and a worker on it (as the e2e tests start them), and
 * fast-check running command sequences against it. Shared by test/conformance.test.ts and `npm run fuzz`.
 */
import fc from 'fast-check';
import { startRedis, type TestRedis } from '../../devtools/redis-server.js';
import { startService } from '../../devtools/service.js';
import { arbitraries } from './arbitraries.js';
import {
  CREDENTIALS,
  Real,
  Stats,
  runSequence,
  switchesFromEnv,
  type Switches,
  type World,
} from './conformance.js';

export interface Session {
  real: Real;
  stats: Stats;
  close(): Promise<void>;
}

export async function startSession(): Promise<Session> {
  const redis: TestRedis = await startRedis();
  const svc = await startService(redis.url, {
    workers: 1,
    credentials: CREDENTIALS.map((c) => ({ ...c, allow: [...c.allow] })),
  });
  const stats = new Stats();
  const real = new Real(svc, stats);
  return {
    real,
    stats,
    async close() {
      real.destroy();
      try {
        await svc.close();
      } finally {
        await redis.destroy();
      }
    },
  };
}

export interface FuzzOptions {
  runs: number;
  seed?: number;
  path?: string;
  /** fast-check's replayPath of fc.commands (printed with a shrunk sequence), with `path`. */
  replayPath?: string;
  maxCommands?: number;
  switches?: Switches;
}

/** Runs `runs` random sequences; the details say the seed, and on failure the shrunk sequence and its path. */
export async function fuzz(
  s: Session,
  o: FuzzOptions,
): Promise<fc.RunDetails<[Iterable<fc.AsyncCommand<World['model'], Real>>]>> {
  const cmds = fc.commands([arbitraries(o.switches ?? switchesFromEnv())], {
    maxCommands: o.maxCommands ?? 40,
    size: 'max',
    ...(o.replayPath !== undefined ? { replayPath: o.replayPath } : {}),
  });
  const prop = fc.asyncProperty(cmds, (seq) => runSequence(s.real, seq));
  return fc.check(prop, {
    numRuns: o.runs,
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.path !== undefined ? { path: o.path } : {}),
    endOnFailure: false,
  });
}
