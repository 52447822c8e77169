import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../../shared/logger.js';
import { StartupError } from '../../shared/startup-errors.js';

/** One SigV4 credential the service accepts, and what it may do. */
export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  /** The account whose certificates this credential sees (12 digits). */
  accountId: string;
  /** IAM-style actions, e.g. `apigateway:GET`; `apigateway:*` (the default) allows everything. */
  allow: string[];
  /** Overrides CLIENT_CERTIFICATE_LIMIT for this credential's account (0 = unlimited). */
  clientCertificateLimit?: number;
}

/** What LocalStack users already have configured; only used when CREDENTIALS_FILE is not set. */
export const DEV_CREDENTIAL: Readonly<Credential> = Object.freeze({
  accessKeyId: 'test',
  secretAccessKey: 'test',
  accountId: '000000000000',
  allow: ['apigateway:*'],
});

const ACTION = /^(\*|apigateway:(\*|GET|POST|PUT|PATCH|DELETE))$/i;

const entrySchema = z
  .object({
    accessKeyId: z
      .string()
      .regex(/^[A-Za-z0-9_+=.@-]{1,128}$/, 'must be 1-128 characters of [A-Za-z0-9_+=.@-]'),
    secretAccessKey: z.string().min(1, 'must not be empty').max(1024),
    accountId: z.string().regex(/^\d{12}$/, 'must be 12 digits'),
    allow: z
      .array(z.string().regex(ACTION, 'must be apigateway:* or apigateway:GET|POST|PUT|PATCH|DELETE'))
      .optional(),
    clientCertificateLimit: z.number().int().min(0).max(1_000_000).optional(),
  })
  .strict();

/** Thrown when the credentials file is missing, unreadable or invalid; the message names the entry. */
export class CredentialsError extends StartupError {
  override name = 'CredentialsError';
}

/** The credentials the API accepts, by access key id. */
export class CredentialStore {
  private readonly byKey = new Map<string, Credential>();
  private readonly limits = new Map<string, number>();

  /** @throws CredentialsError on a duplicate access key or two different limits for one account. */
  constructor(credentials: Credential[]) {
    for (const c of credentials) {
      if (this.byKey.has(c.accessKeyId)) throw new CredentialsError(`duplicate accessKeyId ${c.accessKeyId}`);
      this.byKey.set(c.accessKeyId, c);
      if (c.clientCertificateLimit === undefined) continue;
      const prev = this.limits.get(c.accountId);
      if (prev !== undefined && prev !== c.clientCertificateLimit) {
        throw new CredentialsError(
          `account ${c.accountId} has two different clientCertificateLimit values (${prev} and ${c.clientCertificateLimit})`,
        );
      }
      this.limits.set(c.accountId, c.clientCertificateLimit);
    }
  }

  get(accessKeyId: string): Credential | undefined {
    return this.byKey.get(accessKeyId);
  }

  /** The account's own certificate limit from the credentials file, if it sets one. */
  limitFor(accountId: string): number | undefined {
    return this.limits.get(accountId);
  }

  get size(): number {
    return this.byKey.size;
  }

  /**
   * What changed from `before` to this store, by access key id (never a secret): credentials added,
   * removed, and changed (another secret, account, `allow` or limit). For the reload log.
   */
  changesSince(before: CredentialStore): { added: string[]; removed: string[]; changed: string[] } {
    const added: string[] = [];
    const changed: string[] = [];
    for (const [id, c] of this.byKey) {
      const old = before.get(id);
      if (!old) added.push(id);
      else if (JSON.stringify(old) !== JSON.stringify(c)) changed.push(id);
    }
    const removed = [...before.byKey.keys()].filter((id) => !this.byKey.has(id));
    return { added, removed, changed };
  }
}

/** True when `allow` grants `action` (`apigateway:GET` ...). Action names compare case-insensitively. */
export function isAllowed(c: Pick<Credential, 'allow'>, action: string): boolean {
  const a = action.toLowerCase();
  return c.allow.some((p) => {
    const q = p.toLowerCase();
    return q === '*' || q === 'apigateway:*' || q === a;
  });
}

/**
 * Parses the credentials file's text: a JSON array of
 * `{accessKeyId, secretAccessKey, accountId, allow?, clientCertificateLimit?}`.
 * @throws CredentialsError naming the file and the bad entry (never echoing a secret).
 */
export function parseCredentials(text: string, source = 'CREDENTIALS_FILE'): Credential[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    // Only where: V8's message may quote the text around the error, which can be part of a secret.
    const at = /at position (\d+)/.exec((err as Error).message);
    const where = at ? ` at ${lineAndColumn(text, Number(at[1]))}` : '';
    throw new CredentialsError(`${source} is not valid JSON${where}`);
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new CredentialsError(`${source} must be a non-empty JSON array of credentials`);
  }
  return raw.map((entry, i) => {
    const r = entrySchema.safeParse(entry);
    if (!r.success) {
      const why = r.error.issues.map((x) => `${x.path.join('.') || 'entry'} ${x.message}`).join('; ');
      throw new CredentialsError(`${source} entry ${i}: ${why}`);
    }
    const c: Credential = { ...r.data, allow: r.data.allow ?? ['apigateway:*'] };
    if (r.data.clientCertificateLimit === undefined) delete c.clientCertificateLimit;
    return c;
  });
}

/** `line L, column C` (1-based) of a character offset in `text`. */
function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${before[before.length - 1]!.length + 1}`;
}

/**
 * The API's credentials: from `credentialsFile`, or (outside production) the single development
 * credential `test`/`test` with a warning.
 * @throws CredentialsError in production without a file, or on any problem with the file.
 */
export function loadCredentials(
  opts: { credentialsFile: string | undefined; nodeEnv: string; devAccountId?: string },
  log: Logger,
): CredentialStore {
  if (!opts.credentialsFile) {
    if (opts.nodeEnv === 'production') {
      throw new CredentialsError('CREDENTIALS_FILE is required when NODE_ENV=production');
    }
    log.warn(
      { accessKeyId: DEV_CREDENTIAL.accessKeyId, accountId: opts.devAccountId ?? DEV_CREDENTIAL.accountId },
      'CREDENTIALS_FILE is not set: accepting only the development credential test/test; set CREDENTIALS_FILE in production',
    );
    return new CredentialStore([
      {
        ...DEV_CREDENTIAL,
        allow: [...DEV_CREDENTIAL.allow],
        accountId: opts.devAccountId ?? DEV_CREDENTIAL.accountId,
      },
    ]);
  }
  const store = readCredentialsFile(opts.credentialsFile);
  log.info({ credentials: store.size, file: opts.credentialsFile }, 'credentials loaded');
  return store;
}

/**
 * The credentials in `file`, all or nothing.
 * @throws CredentialsError when the file cannot be read or any entry is invalid (never echoing a secret).
 */
export function readCredentialsFile(file: string): CredentialStore {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CredentialsError(
      `CREDENTIALS_FILE ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return new CredentialStore(parseCredentials(text, `CREDENTIALS_FILE ${file}`));
}
