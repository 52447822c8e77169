// shared/lua/: every Lua script the service runs in Redis, one per file, each opening with a header that
// names its keys (Input), arguments and result (Output), as BullMQ keeps its commands. Registered here,
// and nowhere else, as ioredis custom commands. Every script touches keys of one hash slot (one tenant's
// `{account:region}` tag, or the queue's `{prefix}` for the scheduler's and CA mode's serial index; shared/keys.ts), so each is
// atomic and runs on a Redis Cluster.
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../redis.js';

/** Command name → its file and how many of its arguments are keys. */
export const SCRIPTS = {
  ccGet: { file: 'get.lua', keys: 2 },
  ccReserve: { file: 'reserve.lua', keys: 3 },
  ccCreate: { file: 'create.lua', keys: 4 },
  ccCommit: { file: 'commit.lua', keys: 4 },
  ccSettle: { file: 'settle.lua', keys: 2 },
  ccFence: { file: 'fence.lua', keys: 2 },
  ccDelete: { file: 'delete.lua', keys: 3 },
  ccDeleteRevoking: { file: 'delete-revoking.lua', keys: 5 },
  ccCaIndex: { file: 'ca-index.lua', keys: 2 },
  ccPruneExpired: { file: 'prune-expired.lua', keys: 2 },
  ccDescribe: { file: 'describe.lua', keys: 1 },
  ccTag: { file: 'tag.lua', keys: 2 },
  ccUntag: { file: 'untag.lua', keys: 2 },
  ccReseal: { file: 'reseal.lua', keys: 1 },
  ccGcra: { file: 'gcra.lua', keys: 1 },
  ccSchedInteractive: { file: 'sched-interactive.lua', keys: 4 },
  ccSchedBulk: { file: 'sched-bulk.lua', keys: 2 },
  ccSchedBacklog: { file: 'sched-backlog.lua', keys: 2 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** A client with every script as a command: keys first, then arguments. */
export type Scripted = RedisClient & {
  [K in ScriptName]: (...keysThenArgs: (string | number)[]) => Promise<number>;
};

/** A script's source, as shipped beside this file (scripts/build.mjs copies the .lua files to dist/). */
export function scriptSource(name: ScriptName): string {
  return readFileSync(new URL(SCRIPTS[name].file, import.meta.url), 'utf8');
}

const sources = new Map<ScriptName, string>(
  (Object.keys(SCRIPTS) as ScriptName[]).map((name) => [name, scriptSource(name)]),
);

/** `redis` with every script defined on it (once per client; later calls find them there). */
export function withScripts(redis: RedisClient): Scripted {
  for (const [name, lua] of sources) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: SCRIPTS[name].keys, lua });
  }
  return redis as Scripted;
}
