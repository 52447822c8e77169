/**
 * `npm run build`: the service as plain JavaScript in dist/ (what `npm start`, the Docker image and
 * `npm run bench` run). esbuild transpiles each file on its own, as tsx does on the fly, in about a
 * second; type checking is `npm run typecheck`'s job.
 *
 * Why not run the TypeScript through tsx in production: tsx's loader costs each process about 35 MB of
 * RSS, and its keep-names transform wraps every function it creates; the API answers a
 * GetClientCertificate with less CPU as plain JavaScript (docs/performance.md).
 */
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { argv } from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// `--outdir DIR` builds elsewhere (tests that run side by side each build their own copy instead of sharing dist/).
const outdirArg = argv.indexOf('--outdir');
const outdir = outdirArg > 0 ? resolve(argv[outdirArg + 1] ?? 'dist') : join(root, 'dist');

/** Everything a deployed process runs: the services, the launcher, the operator CLIs, the bench's yardstick. */
export const ENTRY_POINTS = [
  'api/**/*.ts',
  'worker/**/*.ts',
  'gateway/**/*.ts',
  'shared/**/*.ts',
  'scripts/start.ts',
  'scripts/bulk.ts',
  'scripts/bulk/*.ts',
  'scripts/rekey.ts',
  'scripts/rekey/*.ts',
  'scripts/interrupt.ts',
  'bench/bare-hono.ts',
];

rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ENTRY_POINTS,
  outdir,
  outbase: '.',
  platform: 'node',
  format: 'esm',
  target: 'node22',
  sourcemap: true,
  logLevel: 'warning',
});

// The Lua scripts are read at run time from beside shared/lua/index.js.
for (const f of readdirSync(join(root, 'shared/lua')).filter((f) => f.endsWith('.lua'))) {
  cpSync(join(root, 'shared/lua', f), join(outdir, 'shared/lua', f));
}
