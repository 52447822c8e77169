import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { KeyVault } from './key-vault.js';

/**
 * The vault from MASTER_KEY (and MASTER_KEYS_PREVIOUS). Outside production, without MASTER_KEY, a key is
 * generated once into MASTER_KEY_FILE (git-ignored) and reused, with a warning.
 * @param opts.createDevKey false: use MASTER_KEY_FILE only if it exists, never create it (tools that
 *   must not invent a key, such as `npm run rekey`); default true.
 */
export function loadKeyVault(config: Config, log: Logger, opts: { createDevKey?: boolean } = {}): KeyVault {
  let current = config.masterKey;
  if (!current) {
    if (config.nodeEnv === 'production') throw new Error('MASTER_KEY is required when NODE_ENV=production');
    if (opts.createDevKey === false && !existsSync(config.masterKeyFile)) {
      throw new Error(`MASTER_KEY is not set and MASTER_KEY_FILE ${config.masterKeyFile} does not exist`);
    }
    current = readOrCreateDevKey(config.masterKeyFile);
    log.warn(
      { masterKeyFile: config.masterKeyFile },
      'MASTER_KEY is not set: using a development master key from a local file; set MASTER_KEY in production',
    );
  }
  return new KeyVault([current, ...config.masterKeysPrevious]);
}

function readOrCreateDevKey(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(file), { recursive: true });
  try {
    writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readFileSync(file, 'utf8').trim();
}
