import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../shared/config.js';
import { resolveLogFormat } from '../shared/logger.js';
import { ROOT } from '../devtools/processes.js';

describe('LOG_FORMAT', () => {
  it('is auto unless set, and names the variable when it is not one of auto, json, pretty', () => {
    assert.equal(loadConfig({}).logFormat, 'auto');
    assert.equal(loadConfig({ LOG_FORMAT: 'json' }).logFormat, 'json');
    assert.throws(() => loadConfig({ LOG_FORMAT: 'yaml' }), {
      message: 'invalid configuration: LOG_FORMAT must be one of auto, json, pretty, got "yaml"',
    });
  });

  it('auto means pretty on a terminal outside production, JSON on a pipe or under production', () => {
    assert.equal(resolveLogFormat('auto', 'development', true), 'pretty');
    assert.equal(resolveLogFormat('auto', 'test', true), 'pretty');
    assert.equal(resolveLogFormat('auto', 'production', true), 'json');
    assert.equal(resolveLogFormat('auto', 'development', false), 'json');
    assert.equal(resolveLogFormat('json', 'development', true), 'json');
    assert.equal(resolveLogFormat('pretty', 'development', false), 'pretty');
  });
});

/** `script` (util-linux) runs a command on a pseudo-terminal, as a person's shell would. */
const noScript = spawnSync('script', ['--version']).error ? 'no `script` command to make a terminal' : false;

describe('a service logger on a real terminal', { skip: noScript }, () => {
  // A process that logs as the API and workers do: createServiceLogger(loadConfig(), name).
  const probe = [
    `const { loadConfig } = await import(${JSON.stringify(join(ROOT, 'shared/config.ts'))});`,
    `const { createServiceLogger } = await import(${JSON.stringify(join(ROOT, 'shared/logger.ts'))});`,
    `createServiceLogger(loadConfig(), 'probe').info({ privateKey: 'SECRET-KEY', certs: 3 }, 'hello there');`,
  ].join(' ');
  const command = `${process.execPath} --import tsx --input-type=module -e ${JSON.stringify(probe)}`;

  /** The probe's output, colours removed, on a terminal (`tty`) or through a pipe. */
  const run = (env: Record<string, string>, tty: boolean): string => {
    const childEnv = { ...process.env, ...env };
    if (!env.NODE_ENV) delete childEnv.NODE_ENV;
    if (!env.LOG_FORMAT) delete childEnv.LOG_FORMAT;
    const r = tty
      ? spawnSync('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: childEnv, encoding: 'utf8' })
      : spawnSync('sh', ['-c', command], { cwd: ROOT, env: childEnv, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // eslint-disable-next-line no-control-regex
    return r.stdout.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');
  };
  const isJson = (out: string) => {
    const line = JSON.parse(out.trim()) as Record<string, unknown>;
    assert.equal(line.msg, 'hello there');
    assert.equal(line.privateKey, '[redacted]');
  };

  it('writes pretty lines for a person, secrets still redacted', () => {
    const out = run({}, true);
    assert.match(
      out,
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(probe\/\d+\): hello there\n {4}privateKey: "\[redacted\]"\n {4}certs: 3\n$/,
    );
    assert.doesNotMatch(out, /SECRET-KEY/);
  });

  it('writes JSON under NODE_ENV=production, with LOG_FORMAT=json, and when stdout is a pipe', () => {
    isJson(run({ NODE_ENV: 'production', MASTER_KEY: Buffer.alloc(32, 1).toString('base64') }, true));
    isJson(run({ LOG_FORMAT: 'json' }, true));
    isJson(run({}, false));
  });

  it('writes pretty lines to a pipe with LOG_FORMAT=pretty', () => {
    assert.match(run({ LOG_FORMAT: 'pretty' }, false), /INFO \(probe\/\d+\): hello there/);
  });
});
