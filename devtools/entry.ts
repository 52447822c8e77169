import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The node arguments that run one of the service's programs (`api/main.ts`, `scripts/bulk.ts`, ...), for a test
 * that spawns it with `process.execPath` from the repository root.
 *
 * `npm test` (devtools/run-tests.ts) transpiles the tree once with scripts/build.mjs and names the folder in
 * CC_TEST_BUILD: the programs then run as plain JavaScript, as in production, and each start saves tsx's
 * on-the-fly transform (about 0.6 s of wall time and 1 CPU-s for the API, measured on Node 24 here: 1.4 CPU-s
 * through tsx, 0.5 built). A test file run by itself (`node --import tsx --test test/x.test.ts`) has no build and
 * runs the TypeScript through tsx.
 */
export function nodeArgs(entry: string): string[] {
  const built = process.env.CC_TEST_BUILD;
  if (built) {
    const js = join(built, entry.replace(/\.ts$/, '.js'));
    if (existsSync(js)) return ['--enable-source-maps', js];
  }
  return ['--import', 'tsx', entry];
}
