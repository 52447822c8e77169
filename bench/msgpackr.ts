/**
 * Does BullMQ gain from msgpackr's native extension (msgpackr-extract, whose install script npm asks about)?
 * Packs and unpacks what BullMQ packs for a job of ours (the add-job arguments and encoded job options, with
 * msgpackr's options as BullMQ sets them) in this process, then in a child with the extension switched off
 * (MSGPACKR_NATIVE_ACCELERATION_DISABLED=true, msgpackr's own switch), and prints both.
 *
 *   node --import tsx bench/msgpackr.ts
 *
 * BullMQ itself only packs in Node (its Lua scripts unpack with Redis's cmsgpack); the extension speeds up only
 * unpacking, so pack should be the same either way. docs/performance.md has the figures.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Packr, isNativeAccelerationEnabled } from 'msgpackr';

const N = 200_000;
const packer = new Packr({ useRecords: false, encodeUndefinedAsNil: true }); // BullMQ's options

// The shape of BullMQ's addStandardJob arguments and options for one Generate job.
const args = [
  'bull:{cc}:',
  'gen-01JXKZ3Q8V7Y2N5T6W4R9P0M1B',
  'generate',
  Date.now(),
  null,
  null,
  null,
  'gen-01JXKZ3Q8V7Y2N5T6W4R9P0M1B',
  null,
];
const opts = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  kl: 1,
  rmc: { age: 3600, count: 1000 },
};

function measure(): { native: boolean; packNs: number; unpackNs: number } {
  const packed = [packer.pack(args), packer.pack(opts)];
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += packer.pack(args).length + packer.unpack(packed[0]!).length; // warm-up
  let t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += packer.pack(args).length + packer.pack(opts).length;
  const packNs = Number(process.hrtime.bigint() - t) / N;
  t = process.hrtime.bigint();
  for (let i = 0; i < N; i++)
    sink += (packer.unpack(packed[0]!) as unknown[]).length + (packer.unpack(packed[1]!) ? 1 : 0);
  const unpackNs = Number(process.hrtime.bigint() - t) / N;
  if (sink === 0) throw new Error('nothing measured');
  return { native: isNativeAccelerationEnabled, packNs, unpackNs };
}

if (process.env.MSGPACKR_BENCH_CHILD) {
  process.stdout.write(JSON.stringify(measure()));
} else {
  const runs = [measure()];
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, MSGPACKR_BENCH_CHILD: '1', MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true' },
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(child.stderr);
  runs.push(JSON.parse(child.stdout) as ReturnType<typeof measure>);
  process.stdout.write(`node ${process.version}, ${N} iterations of one job's arguments and options\n`);
  for (const r of runs) {
    process.stdout.write(
      `native extension ${r.native ? 'on ' : 'off'}: pack ${r.packNs.toFixed(0)} ns, unpack ${r.unpackNs.toFixed(0)} ns\n`,
    );
  }
}
