/**
 * `npm run docs:config`: writes docs/configuration.md from the configuration schema in
 * shared/config.ts, so the table can never disagree with the code (test/config.test.ts fails when the
 * file is stale). Each row's default is what the schema gives for an unset variable, unless the entry
 * carries a `defaultText` (a default that depends on the machine).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { z } from 'zod';
import { camelCase, variables } from '../shared/config.js';

export const CONFIG_DOCS_PATH = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));

function shownDefault(schema: z.ZodType, meta: Record<string, unknown>): string {
  if (typeof meta['defaultText'] === 'string') return meta['defaultText'];
  const value: unknown = schema.parse(undefined);
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return '—';
  return `\`${String(value)}\``;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The whole of docs/configuration.md, formatted as prettier would. */
export async function renderConfigDocs(): Promise<string> {
  const rows = Object.entries(variables.shape).map(([name, schema]) => {
    const meta = (schema.meta() ?? {}) as Record<string, unknown>;
    const accepts = typeof meta['accepts'] === 'string' ? meta['accepts'] : '';
    return `| \`${name}\` | ${cell(shownDefault(schema, meta))} | ${cell(accepts)} | ${cell(schema.description ?? '')} |`;
  });
  const text = [
    '# Configuration',
    '',
    '<!-- Generated from shared/config.ts by `npm run docs:config`; edit the schema, not this file. -->',
    '',
    'Environment variables, validated at start by `loadConfig` (`shared/config.ts`). A bad value stops the process',
    'with one message naming every bad variable. In the code each is `config.<camelCase name>`',
    `(\`KEY_POOL_SIZE\` -> \`config.${camelCase('KEY_POOL_SIZE')}\`).`,
    '',
    '| variable | default | accepts | meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    'Read outside `loadConfig`: `UV_THREADPOOL_SIZE` (default `max(4, WORKER_CONCURRENCY + 2)`), the libuv threads',
    'of a worker process, where key generation runs. libuv reads it once, before `main.ts` runs, so a worker',
    'started with too few (`npm run start:worker`, `node dist/worker/main.js`) relaunches itself once with enough.',
    '',
    'The mTLS gateway (`npm run gateway`) also takes each `GATEWAY_*` variable but `GATEWAY_REFRESH_MS` as a flag,',
    'which wins; see [mtls-gateway.md](mtls-gateway.md).',
    '',
    '## Read by the compose file only',
    '',
    'These are read by `docker compose` / `docker-compose` from your shell (or a `.env` file), not by the service:',
    '',
    '| variable | default | meaning |',
    '| --- | --- | --- |',
    '| `API_PORT` | `8080` | host port the API is published on (`127.0.0.1:API_PORT`) |',
    '| `REDIS_PORT` | `6379` | host port Redis is published on, only with `-f docker-compose.yml -f docker-compose.redis-port.yml` |',
    '',
    'The compose file also passes `NODE_ENV`, `LOG_LEVEL`, `MASTER_KEY`, `GENERATE_TIMEOUT_MS` and `UV_THREADPOOL_SIZE`',
    'from your shell to the containers.',
    '',
  ].join('\n');
  const options = await prettier.resolveConfig(CONFIG_DOCS_PATH);
  return prettier.format(text, { ...options, parser: 'markdown' });
}

/** The file as it is on disk, or '' when missing. */
export async function readConfigDocs(): Promise<string> {
  return readFile(CONFIG_DOCS_PATH, 'utf8').catch(() => '');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(CONFIG_DOCS_PATH, await renderConfigDocs());
  process.stdout.write(`wrote ${CONFIG_DOCS_PATH}\n`);
}
