/**
 * `npm run fuzz -- --runs N [--seed S] [--path P] [--max-commands M]`: random command sequences against
 * the real service, compared with the reference model after every step. Prints the seed first; a failure
 * prints the shrunk sequence and the `--seed S --path P` that replays it.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { switchesFromEnv } from './conformance.js';
import { fuzz, startSession } from './session.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '100' },
    seed: { type: 'string' },
    path: { type: 'string' },
    'replay-path': { type: 'string' },
    'max-commands': { type: 'string', default: '60' },
  },
});
const runs = Number(values.runs);
const seed =
  values.seed !== undefined ? Number(values.seed) : (Date.now() ^ (Math.random() * 0x100000000)) | 0;
const switches = switchesFromEnv();
const out = (s: string) => process.stdout.write(`${s}\n`);
out(
  `fuzz: --runs ${runs} --seed ${seed}${values.path ? ` --path ${values.path}` : ''} (switches ${JSON.stringify(switches)})`,
);

const session = await startSession();
const started = Date.now();
let code = 0;
try {
  const details = await fuzz(session, {
    runs,
    seed,
    ...(values.path !== undefined ? { path: values.path } : {}),
    ...(values['replay-path'] !== undefined ? { replayPath: values['replay-path'] } : {}),
    maxCommands: Number(values['max-commands']),
    switches,
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  out(`fuzz: ${session.stats.operations} operations in ${session.stats.runs} sequences, ${secs} s`);
  const answers = [...session.stats.answers.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [k, n] of answers) out(`  ${String(n).padStart(6)}  ${k}`);
  if (details.failed) {
    code = 1;
    out(fc.defaultReportMessage(details) ?? 'failed');
    out(
      `fuzz: divergence: ${String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance)}`,
    );
    const replay = /replayPath="([^"]*)"/.exec(String(details.counterexample?.[0] ?? ''))?.[1];
    out(
      `fuzz: replay with: npm run fuzz -- --runs ${runs} --seed ${details.seed} --path ${details.counterexamplePath}${replay ? ` --replay-path ${replay}` : ''}`,
    );
  } else {
    out(`fuzz: ${details.numRuns} runs, 0 divergences (seed ${details.seed})`);
  }
} finally {
  await session.close();
}
process.exit(code);
