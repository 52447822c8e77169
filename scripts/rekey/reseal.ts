// scripts/rekey/: `npm run rekey`: re-seals every stored private key under the current MASTER_KEY.
import type { ClientCertificateStore } from '../../shared/client-certificate-store.js';
import { KeyVault, keyAad } from '../../shared/crypto/key-vault.js';
import type { Tenant } from '../../shared/keys.js';

export interface RekeyDeps {
  store: ClientCertificateStore;
  /** The current master key (MASTER_KEY) seals; every key it holds opens. */
  vault: KeyVault;
  /** Open every record but write nothing. */
  dryRun?: boolean;
  /** Records handled at once; default 16. */
  concurrency?: number;
  /** SCAN's COUNT hint; default 500. */
  scanCount?: number;
  /** Called after every record with the counts so far. */
  progress?: (counts: RekeyCounts) => void;
  /** Aborting stops after the records in hand; a re-run carries on (finished records are skipped). */
  signal?: AbortSignal;
}

export interface RekeyCounts {
  /** Records found. */
  scanned: number;
  /** Records re-sealed under the current master key (in a dry run: that would be). */
  resealed: number;
  /** Records already sealed under the current master key, which opened with it. */
  current: number;
  /** Records deleted between being found and being re-sealed: left deleted. */
  vanished: number;
  /** Records that could not be opened or re-sealed. */
  failed: number;
}

/** A record that could not be opened or re-sealed, and why. Never carries key material. */
export interface RekeyFailure {
  accountId: string;
  region: string;
  clientCertificateId: string;
  reason: string;
}

export interface RekeyResult extends RekeyCounts {
  failures: RekeyFailure[];
  /** Records found per master key id that had sealed them, before this run. */
  sealedUnder: Record<string, number>;
  interrupted: boolean;
}

type Outcome =
  | { kind: 'resealed' | 'current' | 'vanished'; keyId?: string }
  | { kind: 'failed'; keyId?: string; reason: string };

/** How often a record's sealed key may change under us before it is reported instead of retried. */
const MAX_ATTEMPTS = 3;

/**
 * Re-seals every certificate's private key under the vault's current master key, one record at a
 * time, each with a compare-and-set (the store's `replaceEncryptedKey`): a record deleted or changed
 * after it was read is never recreated or overwritten. Records already under the current key are only
 * opened (to prove they can be), so a re-run is harmless and finishes what an interrupted one left.
 * The private key exists in clear only in memory, between opening and sealing, and is zeroed after.
 * @throws on a Redis failure (a re-run resumes).
 */
export async function runRekey(deps: RekeyDeps): Promise<RekeyResult> {
  const { store, vault } = deps;
  const concurrency = deps.concurrency ?? 16;
  const result: RekeyResult = {
    scanned: 0,
    resealed: 0,
    current: 0,
    vanished: 0,
    failed: 0,
    failures: [],
    sealedUnder: {},
    interrupted: false,
  };
  // SCAN may return a key twice (a rehash during the walk); count and handle each record once.
  const seen = new Set<string>();

  const one = async (t: Tenant, id: string): Promise<Outcome> => {
    const aad = keyAad(t.accountId, t.region, id);
    let firstKeyId: string | undefined; // what sealed the record before this run, for the summary
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const sealed = await store.getEncryptedKey(t, id, { provisional: true });
      if (sealed === undefined) {
        if ((await store.get(t, id)) === undefined) return { kind: 'vanished', keyId: firstKeyId };
        return { kind: 'failed', reason: 'the record holds no sealed private key' };
      }
      const keyId = KeyVault.envelopeKeyId(sealed);
      firstKeyId ??= keyId;
      let plain: Buffer;
      try {
        plain = vault.decrypt(sealed, aad);
      } catch (err) {
        return { kind: 'failed', keyId: firstKeyId, reason: whyUnreadable(vault, keyId, err) };
      }
      try {
        if (keyId === vault.currentKeyId) return { kind: 'current', keyId: firstKeyId };
        if (deps.dryRun) return { kind: 'resealed', keyId: firstKeyId };
        const next = vault.encrypt(plain, aad);
        const r = await store.replaceEncryptedKey(t, id, sealed, next);
        if (r === 'replaced') return { kind: 'resealed', keyId: firstKeyId };
        if (r === 'gone') return { kind: 'vanished', keyId: firstKeyId };
        // 'changed': written meanwhile (another rekey run, say): read it again.
      } finally {
        plain.fill(0);
      }
    }
    return {
      kind: 'failed',
      keyId: firstKeyId,
      reason: `its sealed key changed ${MAX_ATTEMPTS} times during the run`,
    };
  };

  const record = (t: Tenant, id: string, o: Outcome) => {
    if (o.keyId !== undefined) result.sealedUnder[o.keyId] = (result.sealedUnder[o.keyId] ?? 0) + 1;
    result[o.kind] += 1;
    if (o.kind === 'failed') {
      result.failures.push({
        accountId: t.accountId,
        region: t.region,
        clientCertificateId: id,
        reason: o.reason,
      });
    }
    deps.progress?.(counts(result));
  };

  scan: for await (const page of store.scanCertificates(deps.scanCount)) {
    const fresh = page.filter(({ tenant: t, id }) => {
      const k = `${t.accountId}/${t.region}/${id}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    for (let i = 0; i < fresh.length; i += concurrency) {
      if (deps.signal?.aborted) {
        result.interrupted = true;
        break scan;
      }
      const chunk = fresh.slice(i, i + concurrency);
      result.scanned += chunk.length;
      const outcomes = await Promise.all(chunk.map(({ tenant, id }) => one(tenant, id)));
      chunk.forEach(({ tenant, id }, j) => record(tenant, id, outcomes[j]!));
    }
  }
  return result;
}

function counts(r: RekeyCounts): RekeyCounts {
  return {
    scanned: r.scanned,
    resealed: r.resealed,
    current: r.current,
    vanished: r.vanished,
    failed: r.failed,
  };
}

/** Why an envelope did not open, in words an operator can act on (never the key material). */
function whyUnreadable(vault: KeyVault, keyId: string | undefined, err: unknown): string {
  if (!keyId || (err as Error).message === 'malformed key envelope') return 'malformed key envelope';
  if (!vault.hasKey(keyId)) {
    return `sealed under master key ${keyId}, which is neither MASTER_KEY nor in MASTER_KEYS_PREVIOUS`;
  }
  return `does not open under master key ${keyId} (the envelope is damaged or was not sealed for this record)`;
}
