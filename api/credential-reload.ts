import type { Logger } from '../shared/logger.js';
import {
  CredentialStore,
  loadCredentials,
  readCredentialsFile,
  type Credential,
} from './auth/credentials.js';

/**
 * The credentials in force, replaced as a whole by {@link reload} (SIGHUP): the issuer's limits and
 * the verifier (told through `onChange`) read the current one.
 */
export class CredentialReload {
  private store: CredentialStore;
  private readonly listeners: ((next: CredentialStore) => void)[] = [];

  /**
   * @param given credentials to accept instead of CREDENTIALS_FILE (tests).
   * @throws CredentialsError when the credentials cannot be loaded.
   */
  constructor(
    private readonly config: {
      credentialsFile?: string | undefined;
      nodeEnv: string;
      defaultAccountId: string;
    },
    private readonly log: Logger,
    given?: Credential[],
  ) {
    this.store = given
      ? new CredentialStore(given)
      : loadCredentials(
          {
            credentialsFile: config.credentialsFile,
            nodeEnv: config.nodeEnv,
            devAccountId: config.defaultAccountId,
          },
          log,
        );
  }

  get current(): CredentialStore {
    return this.store;
  }

  /** Calls `listener` with every store a reload puts in force. */
  onChange(listener: (next: CredentialStore) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Reads CREDENTIALS_FILE again. A valid file replaces the accepted credentials and per-account
   * limits in one step; an unreadable or invalid one is logged as an error and the credentials in
   * force stay. @returns whether the file was applied.
   */
  reload(): boolean {
    const file = this.config.credentialsFile;
    if (!file) {
      this.log.warn('credentials not reloaded: CREDENTIALS_FILE is not set');
      return false;
    }
    let next: CredentialStore;
    try {
      next = readCredentialsFile(file);
    } catch (err) {
      this.log.error(
        { err: (err as Error).message, file, credentials: this.store.size },
        'credentials not reloaded: keeping the credentials in force',
      );
      return false;
    }
    const changes = next.changesSince(this.store);
    // All in the same tick: no request sees one store's credentials with the other's limits.
    this.store = next;
    for (const listener of this.listeners) listener(next);
    this.log.info({ file, credentials: next.size, ...changes }, 'credentials reloaded');
    return true;
  }
}
