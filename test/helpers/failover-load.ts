import { DeleteClientCertificateCommand, type APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { awsClient, generate } from './aws-client.js';
import { TENANT, type StoreView } from './records.js';

/** What six clients were told while Redis failed over under them. */
export interface LoadLog {
  /** Certificates answered 201: id → description, and when (epoch ms). */
  created: Map<string, { description: string; at: number }>;
  /** Certificates whose Delete was answered 202. */
  deleted: Set<string>;
  /** Certificates whose Delete got anything else (its outcome unknown to the caller). */
  deleteUnknown: Set<string>;
  /** Every 2xx, epoch ms, in order. */
  successes: number[];
  /** Non-2xx answers by status (network errors as 0). */
  failures: Map<number, number>;
}

/**
 * Six clients, each looping: Generate (a unique description), and every other certificate it got
 * a Delete, until `stop()`; every answer is recorded. Returns the log and a stop function that waits
 * for the calls in flight.
 */
export function startLoad(url: string, clients = 6): { log: LoadLog; stop: () => Promise<void> } {
  const log: LoadLog = {
    created: new Map(),
    deleted: new Set(),
    deleteUnknown: new Set(),
    successes: [],
    failures: new Map(),
  };
  let stopping = false;
  const fail = (status: number | undefined) =>
    log.failures.set(status ?? 0, (log.failures.get(status ?? 0) ?? 0) + 1);
  const loop = async (n: number, client: APIGatewayClient) => {
    for (let i = 0; !stopping; i++) {
      const description = `client-${n}-${i}-${Date.now()}`;
      const o = await generate(client, { description });
      if (!o.ok) {
        fail(o.status);
        if (o.status === 400)
          await new Promise((r) => setTimeout(r, 100)); // quota reached
        else if (o.status !== undefined && o.status >= 500) await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const id = o.cert.clientCertificateId!;
      log.created.set(id, { description, at: Date.now() });
      log.successes.push(Date.now());
      if (i % 2 === 1) {
        try {
          const d = await client.send(new DeleteClientCertificateCommand({ clientCertificateId: id }));
          if (d.$metadata.httpStatusCode === 202) {
            log.deleted.add(id);
            log.successes.push(Date.now());
          } else log.deleteUnknown.add(id);
        } catch (err) {
          log.deleteUnknown.add(id);
          fail((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode);
        }
      }
    }
  };
  const sdks = Array.from({ length: clients }, () => awsClient(url, { requestTimeoutMs: 30_000 }));
  const loops = sdks.map((c, n) => loop(n, c));
  return {
    log,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      for (const c of sdks) c.destroy();
    },
  };
}

/** What the store holds now against what the clients were told. */
export async function audit(log: LoadLog, view: StoreView) {
  const stored = new Map((await view.all(TENANT)).map((c) => [c.clientCertificateId, c]));
  const lost: string[] = [];
  const wrongDescription: string[] = [];
  for (const [id, { description }] of log.created) {
    if (log.deleted.has(id) || log.deleteUnknown.has(id)) continue;
    const c = stored.get(id);
    if (!c) lost.push(id);
    else if (c.description !== description) wrongDescription.push(id);
  }
  const resurrected = [...log.deleted].filter((id) => stored.has(id));
  return { stored: stored.size, lost, wrongDescription, resurrected };
}
