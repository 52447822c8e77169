// CA mode's revocation publishing: the signed CRL and the OCSP responder (RFC 5280, RFC 6960), built with pkijs.
import { createHash, sign, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { VALIDITY_SECONDS, type ClientCertificate } from '../shared/client-certificate.js';
import type { ClientCertificateStore } from '../shared/client-certificate-store.js';
import type { Tenant } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import {
  normalSerial,
  type RevocationEntry,
  type RevocationStore,
  type StoredCrl,
} from '../shared/revocation-store.js';
import type { CertificateAuthority } from '../shared/certificate-authority.js';
import type { SideWrite } from './durable-ack.js';

export type OcspStatus = 'good' | 'revoked' | 'unknown';

/** RFC 5280 5.3.1 CRLReason cessationOfOperation: a deleted certificate is no longer used. */
const CESSATION_OF_OPERATION = 5;
const OID = {
  authorityKeyIdentifier: '2.5.29.35',
  crlNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
} as const;
/** CertID hash algorithms this responder recognises (RFC 6960 requires SHA-1; SHA-256 is common too). */
const CERT_ID_HASHES: Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
/** OCSPResponseStatus (RFC 6960 4.2.1). */
const RESPONSE_STATUS = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3 } as const;

/** How often one API process looks for revocations it has not published yet, ms (the 15 s promise has room). */
const CRL_CHECK_MS = 2000;
/**
 * How long an answer to a nonce-less OCSP request is reused, ms: a delete through another API replica
 * shows within this (well inside the 15 s promise), one through this replica at once.
 */
const OCSP_CACHE_MS = 3000;
/** Cached OCSP answers kept at most (the cache is emptied when full). */
const OCSP_CACHE_MAX = 10_000;
/** How long one API process may hold the CRL signing turn, and others wait for its CRL, ms. */
const CRL_LOCK_MS = 3000;
/** How often one API process looks for tenants missing from the revoked-tenant set (lost writes), ms. */
const RECONCILE_MS = 5 * 60_000;
/** How often one API process removes expired certificates' serials from the serial index, ms. */
const PRUNE_MS = 60_000;

export interface CaResponderOptions {
  ca: CertificateAuthority;
  /** CA_CERT_FILE's first certificate, PEM: the issuer whose CRL and OCSP answers this signs. */
  caCertPem: string;
  revocations: RevocationStore;
  log: Logger;
  crlValiditySeconds: number;
  ocspValiditySeconds: number;
  now?: () => number;
  /** Prune the serial index every PRUNE_MS (default true; tests call {@link CaResponder.pruneSerials}). */
  pruneTimer?: boolean;
}

/** What /metrics reports of revocation publishing. */
export interface CaStats {
  /** Revoked serials whose certificates have not expired, as of the last CRL check. */
  revoked: number;
  /** thisUpdate of the CRL in force, epoch ms; 0 before the first. */
  crlThisUpdate: number;
  /** OCSP single answers given, by status. */
  ocsp: Record<OcspStatus, number>;
}

/**
 * Signs the CRL and OCSP answers with the CA key (docs/security.md says why the API holds it). Every
 * answer comes from Redis, so any API replica gives the same one, before and after a failover; the CRL
 * itself is stored in Redis too, so replicas serve the same CRL number.
 */
export class CaResponder {
  readonly caCert: X509Certificate;
  readonly caDer: Buffer;
  private readonly issuerName: pkijs.RelativeDistinguishedNames;
  private readonly keyBits: Buffer;
  private readonly now: () => number;
  private crl: { stored: StoredCrl; checkedAt: number } | undefined;
  private crlBuilding: Promise<StoredCrl> | undefined;
  private reconciledAt = 0;
  /** Answers to nonce-less requests (what nginx sends), by the request's bytes, for OCSP_CACHE_MS. */
  private readonly answers = new Map<string, { at: number; der: Buffer; statuses: OcspStatus[] }>();
  readonly stats: CaStats = { revoked: 0, crlThisUpdate: 0, ocsp: { good: 0, revoked: 0, unknown: 0 } };

  constructor(private readonly o: CaResponderOptions) {
    this.caCert = new X509Certificate(o.caCertPem);
    this.caDer = this.caCert.raw;
    const parsed = pkijs.Certificate.fromBER(Uint8Array.from(this.caDer));
    this.issuerName = new pkijs.RelativeDistinguishedNames({
      schema: asn1js.fromBER(Uint8Array.from(o.ca.subjectDer)).result,
    });
    this.keyBits = Buffer.from(parsed.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
    this.now = o.now ?? Date.now;
    if (o.pruneTimer !== false) {
      this.pruneTimer = setInterval(() => void this.pruneSerials(), PRUNE_MS).unref();
      void this.backfillSerialExpiry().then(() => this.pruneSerials());
    }
  }

  private readonly pruneTimer: NodeJS.Timeout | undefined;

  close(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
  }

  /**
   * Removes the serial index entries of certificates past their notAfter (every API replica does, every
   * PRUNE_MS: the script is idempotent). OCSP answers such a serial `unknown` from its notAfter on
   * anyway. @returns how many were removed; 0 when Redis did not answer (the next round tries again).
   */
  async pruneSerials(): Promise<number> {
    try {
      const nowS = Math.floor(this.now() / 1000);
      const n = await this.o.revocations.pruneSerials(nowS);
      const revoked = await this.o.revocations.pruneRevoked(nowS);
      if (n > 0 || revoked > 0) {
        this.o.log.info({ pruned: n, revokedPruned: revoked }, 'expired serials pruned from the OCSP index');
      }
      return n;
    } catch (err) {
      this.o.log.warn({ err }, 'serial index not pruned: Redis unavailable');
      return 0;
    }
  }

  /** Entries of the serial index OCSP reads. */
  async serialIndexSize(): Promise<number> {
    return (await this.o.revocations.serialCounts()).serials;
  }

  /** Index entries from before notAfter was recorded get one (once per process, at start). */
  async backfillSerialExpiry(): Promise<number> {
    try {
      const n = await this.o.revocations.backfillSerialExpiry(
        Math.floor(this.now() / 1000),
        VALIDITY_SECONDS,
      );
      if (n > 0) this.o.log.info({ entries: n }, 'serial index entries given their notAfter');
      return n;
    } catch (err) {
      this.o.log.warn({ err }, 'serial index not backfilled: Redis unavailable (next start tries again)');
      return 0;
    }
  }

  /**
   * With REDIS_WAIT_REPLICAS: the serial index entry of a new CA-issued certificate, written again and
   * confirmed on the replicas of its shard before the Generate's 201 (api/durable-ack.ts); undefined
   * for a certificate this CA did not issue.
   */
  serialIndexWrite(t: Tenant, c: ClientCertificate): SideWrite | undefined {
    const entry = this.revocationFor(c.pemEncodedCertificate, c.expirationDate);
    return (
      entry && this.o.revocations.indexSerialWrite(entry.serial, t, c.clientCertificateId, entry.notAfter)
    );
  }

  /**
   * The revocation a delete of this certificate must record, or undefined when this CA did not issue it
   * (a self-signed certificate from before CERT_ISSUER=ca: nothing trusts it through the CA).
   */
  revocationFor(pem: string, notAfter: number): RevocationEntry | undefined {
    let x: X509Certificate;
    try {
      x = new X509Certificate(pem);
    } catch {
      return undefined;
    }
    if (!x.checkIssued(this.caCert) || !x.verify(this.caCert.publicKey)) return undefined;
    return { serial: normalSerial(x.serialNumber), notAfter, revokedAt: this.now() };
  }

  /**
   * DeleteClientCertificate in CA mode: registers the tenant, then deletes the record and records its
   * revocation in one atomic step (through `store`, so REDIS_WAIT_REPLICAS confirms it like any delete).
   */
  async delete(store: ClientCertificateStore, t: Tenant, id: string): Promise<boolean> {
    const record = await store.get(t, id);
    if (!record) return false;
    const entry = this.revocationFor(record.pemEncodedCertificate, record.expirationDate);
    if (!entry) return store.delete(t, id);
    await this.o.revocations.registerTenant(t);
    const deleted = await store.delete(t, id, entry);
    if (deleted) {
      this.crl = this.crl && { ...this.crl, checkedAt: 0 };
      this.answers.clear();
    }
    return deleted;
  }

  /** The CRL in force, DER: the stored one while it lists every revocation and is fresh, else a new one. */
  async currentCrl(): Promise<StoredCrl> {
    if (this.crl && this.now() - this.crl.checkedAt < CRL_CHECK_MS) return this.crl.stored;
    this.crlBuilding ??= this.refreshCrl().finally(() => (this.crlBuilding = undefined));
    return this.crlBuilding;
  }

  private async refreshCrl(): Promise<StoredCrl> {
    const now = this.now();
    if (now - this.reconciledAt > RECONCILE_MS) {
      const missing = await this.o.revocations.reconcileTenants();
      if (missing > 0) this.o.log.warn({ missing }, 'revoked-tenant set was missing tenants: restored');
      this.reconciledAt = now;
    }
    const entries = await this.o.revocations.listRevoked(Math.floor(now / 1000));
    const digest = createHash('sha256')
      .update(entries.map((e) => `${e.serial}@${e.revokedAt}`).join(','))
      .digest('hex');
    const resignAfter = (this.o.crlValiditySeconds * 1000) / 10;
    const current = (c: StoredCrl | undefined): c is StoredCrl =>
      c !== undefined && c.digest === digest && this.now() - c.thisUpdate <= resignAfter;
    let stored = await this.o.revocations.storedCrl();
    if (!current(stored)) {
      // One replica signs; the others wait for its CRL (bounded), so they all serve one CRL number.
      const mine = await this.o.revocations.lockCrl(CRL_LOCK_MS);
      // Read again once the turn is ours: another replica may have signed and let go of the turn
      // between our first read and our SET NX, and signing again would give a second CRL number.
      if (mine) stored = await this.o.revocations.storedCrl();
      if (!mine) {
        const until = this.now() + CRL_LOCK_MS;
        while (!current(stored) && this.now() < until) {
          await new Promise((r) => setTimeout(r, 50));
          stored = await this.o.revocations.storedCrl();
        }
      }
      if (!current(stored)) {
        try {
          const number = await this.o.revocations.nextCrlNumber(this.now());
          const thisUpdate = Math.floor(this.now() / 1000) * 1000;
          stored = { der: this.signCrl(entries, number, thisUpdate), digest, number, thisUpdate };
          await this.o.revocations.storeCrl(stored);
          this.o.log.info({ crlNumber: number, revoked: entries.length }, 'CRL signed');
        } finally {
          if (mine) await this.o.revocations.unlockCrl();
        }
      } else if (mine) {
        await this.o.revocations.unlockCrl();
      }
    }
    this.stats.revoked = entries.length;
    this.stats.crlThisUpdate = stored.thisUpdate;
    this.crl = { stored, checkedAt: now };
    return stored;
  }

  /** RFC 5280 5.1: a v2 CRL with the authority key identifier and CRL number extensions. */
  private signCrl(entries: RevocationEntry[], number: number, thisUpdate: number): Buffer {
    const time = (ms: number) => new pkijs.Time({ type: 0, value: new Date(Math.floor(ms / 1000) * 1000) });
    const crl = new pkijs.CertificateRevocationList({
      version: 1,
      signature: this.algorithm(),
      issuer: this.issuerName,
      thisUpdate: time(thisUpdate),
      nextUpdate: time(thisUpdate + this.o.crlValiditySeconds * 1000),
      crlExtensions: new pkijs.Extensions({
        extensions: [
          new pkijs.Extension({
            extnID: OID.authorityKeyIdentifier,
            extnValue: new pkijs.AuthorityKeyIdentifier({
              keyIdentifier: new asn1js.OctetString({ valueHex: new Uint8Array(this.o.ca.keyIdentifier) }),
            })
              .toSchema()
              .toBER(),
          }),
          new pkijs.Extension({
            extnID: OID.crlNumber,
            extnValue: new asn1js.Integer({ value: number }).toBER(),
          }),
        ],
      }),
    });
    // RFC 5280 5.1.2.6: when no certificate is revoked, the list is absent (not an empty SEQUENCE).
    if (entries.length > 0) {
      crl.revokedCertificates = entries.map(
        (e) =>
          new pkijs.RevokedCertificate({
            userCertificate: new asn1js.Integer({ valueHex: serialBytes(e.serial) }),
            revocationDate: time(e.revokedAt),
            crlEntryExtensions: new pkijs.Extensions({
              extensions: [
                new pkijs.Extension({
                  extnID: OID.reasonCode,
                  extnValue: new asn1js.Enumerated({ value: CESSATION_OF_OPERATION }).toBER(),
                }),
              ],
            }),
          }),
      );
    }
    crl.signatureAlgorithm = this.algorithm();
    // encodeTBS is protected in pkijs's types, public in its code: it lays out the TBSCertList to sign.
    const tbs = (crl as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS();
    crl.tbsView = new Uint8Array(tbs.toBER());
    crl.signatureValue = new asn1js.BitString({ valueHex: this.sign(crl.tbsView) });
    return Buffer.from(crl.toSchema().toBER());
  }

  /**
   * Answers a DER OCSPRequest (RFC 6960) with a DER OCSPResponse: one SingleResponse per request,
   * `good` for a live certificate this CA issued, `revoked` (cessationOfOperation) for a deleted one
   * until it expires, `unknown` for a serial it never issued or a CertID naming another issuer. A nonce
   * of 1 to 32 octets is echoed (RFC 8954); a longer one is left out of the answer.
   */
  async ocsp(
    requestDer: Uint8Array,
    store: ClientCertificateStore,
  ): Promise<{ der: Buffer; statuses: OcspStatus[] }> {
    const cacheKey = createHash('sha256').update(requestDer).digest('base64');
    const cached = this.answers.get(cacheKey);
    if (cached && this.now() - cached.at < OCSP_CACHE_MS) {
      for (const s of cached.statuses) this.stats.ocsp[s] += 1;
      return { der: cached.der, statuses: cached.statuses };
    }
    let request: pkijs.OCSPRequest;
    try {
      request = pkijs.OCSPRequest.fromBER(Uint8Array.from(requestDer));
      if (request.tbsRequest.requestList.length === 0) throw new Error('no request');
    } catch {
      return { der: ocspError(RESPONSE_STATUS.malformedRequest), statuses: [] };
    }
    const now = this.now();
    const thisUpdate = new Date(Math.floor(now / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.o.ocspValiditySeconds * 1000);
    const statuses: OcspStatus[] = [];
    const responses: pkijs.SingleResponse[] = [];
    try {
      for (const r of request.tbsRequest.requestList) {
        const { status, revokedAt } = await this.statusOf(r.reqCert, store);
        statuses.push(status);
        responses.push(
          new pkijs.SingleResponse({
            certID: r.reqCert,
            certStatus: certStatus(status, revokedAt),
            thisUpdate,
            nextUpdate,
          }),
        );
      }
    } catch (err) {
      this.o.log.warn({ err }, 'OCSP request not answered: Redis unavailable');
      return { der: ocspError(RESPONSE_STATUS.tryLater), statuses: [] };
    }
    const data = new pkijs.ResponseData({
      responderID: new asn1js.OctetString({
        valueHex: new Uint8Array(createHash('sha1').update(this.keyBits).digest()),
      }),
      producedAt: thisUpdate,
      responses,
    });
    const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === OID.ocspNonce);
    if (nonce && nonceLength(nonce) >= 1 && nonceLength(nonce) <= 32) {
      data.responseExtensions = [
        new pkijs.Extension({
          extnID: OID.ocspNonce,
          extnValue: nonce.extnValue.valueBlock.valueHexView.slice().buffer,
        }),
      ];
    }
    const basic = new pkijs.BasicOCSPResponse({
      tbsResponseData: data,
      signatureAlgorithm: this.algorithm(),
    });
    data.tbsView = new Uint8Array(data.toSchema(true).toBER());
    basic.signature = new asn1js.BitString({ valueHex: this.sign(data.tbsView) });
    const response = new pkijs.OCSPResponse({
      responseStatus: new asn1js.Enumerated({ value: RESPONSE_STATUS.successful }),
      responseBytes: new pkijs.ResponseBytes({
        responseType: OID.ocspBasic,
        response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER() }),
      }),
    });
    for (const s of statuses) this.stats.ocsp[s] += 1;
    const der = Buffer.from(response.toSchema().toBER());
    // A request without a nonce may get the same signed answer again for a few seconds (as CAs pre-sign
    // answers); one with a nonce never repeats. A delete through this process empties the cache at once.
    if (!nonce) {
      if (this.answers.size >= OCSP_CACHE_MAX) this.answers.clear();
      this.answers.set(cacheKey, { at: now, der, statuses });
    }
    return { der, statuses };
  }

  private async statusOf(
    id: pkijs.CertID,
    store: ClientCertificateStore,
  ): Promise<{ status: OcspStatus; revokedAt?: number }> {
    const hash = CERT_ID_HASHES[id.hashAlgorithm.algorithmId];
    if (!hash) return { status: 'unknown' };
    const nameHash = createHash(hash).update(this.o.ca.subjectDer).digest();
    const keyHash = createHash(hash).update(this.keyBits).digest();
    if (
      !nameHash.equals(Buffer.from(id.issuerNameHash.valueBlock.valueHexView)) ||
      !keyHash.equals(Buffer.from(id.issuerKeyHash.valueBlock.valueHexView))
    ) {
      return { status: 'unknown' };
    }
    const serial = normalSerial(id.serialNumber.valueBlock.valueHexView);
    const owner = await this.o.revocations.lookupSerial(serial);
    if (!owner) return { status: 'unknown' };
    // Past its notAfter a certificate has no status here: its revocation entry and its index entry
    // are pruned from then on, so the answer is `unknown` from the first second, not only once pruned.
    if (owner.notAfter !== undefined && owner.notAfter * 1000 < this.now()) return { status: 'unknown' };
    const revokedAt = await this.o.revocations.revokedAt(owner.tenant, serial);
    if (revokedAt !== undefined) return { status: 'revoked', revokedAt };
    const record = await store.get(owner.tenant, owner.id);
    if (!record) return { status: 'unknown' };
    const x = new X509Certificate(record.pemEncodedCertificate);
    return { status: normalSerial(x.serialNumber) === serial ? 'good' : 'unknown' };
  }

  private algorithm(): pkijs.AlgorithmIdentifier {
    return new pkijs.AlgorithmIdentifier({
      algorithmId: this.o.ca.signatureOid,
      ...(this.o.ca.nullParameters ? { algorithmParams: new asn1js.Null() } : {}),
    });
  }

  private sign(tbs: Uint8Array): Uint8Array {
    return new Uint8Array(sign(this.o.ca.hash, tbs, this.o.ca.privateKey));
  }
}

/** A serial's DER INTEGER contents: even-length hex, with a 00 before a high bit (positive). */
function serialBytes(serial: string): Uint8Array {
  let hex = serial.length % 2 ? `0${serial}` : serial;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** CertStatus (RFC 6960 4.2.1): good [0] IMPLICIT NULL, revoked [1] RevokedInfo, unknown [2] IMPLICIT NULL. */
function certStatus(status: OcspStatus, revokedAt = 0): asn1js.BaseBlock {
  if (status === 'revoked') {
    return new asn1js.Constructed({
      idBlock: { tagClass: 3, tagNumber: 1 },
      value: [
        new asn1js.GeneralizedTime({ valueDate: new Date(Math.floor(revokedAt / 1000) * 1000) }),
        new asn1js.Constructed({
          idBlock: { tagClass: 3, tagNumber: 0 },
          value: [new asn1js.Enumerated({ value: CESSATION_OF_OPERATION })],
        }),
      ],
    });
  }
  return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: status === 'good' ? 0 : 2 } });
}

/** The nonce's length in octets (its extnValue holds an OCTET STRING), or -1 when it is not one. */
function nonceLength(e: pkijs.Extension): number {
  const inner = asn1js.fromBER(e.extnValue.valueBlock.valueHexView);
  return inner.offset !== -1 && inner.result instanceof asn1js.OctetString
    ? inner.result.valueBlock.valueHexView.byteLength
    : -1;
}

/** An OCSPResponse without a body: malformedRequest, internalError or tryLater. */
export function ocspError(status: number): Buffer {
  return Buffer.from(
    new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: status }) }).toSchema().toBER(),
  );
}

export { RESPONSE_STATUS };
