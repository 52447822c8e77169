import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseCredentials } from '../api/auth/credentials.js';
import { loadConfig } from '../shared/config.js';
import { ROOT } from '../devtools/processes.js';

const DIR = join(ROOT, 'deploy', 'kubernetes');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

/** Every object of every manifest, with the file it came from. */
function manifests(): { file: string; obj: K8sObject }[] {
  const out: { file: string; obj: K8sObject }[] = [];
  for (const file of readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(DIR, file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
      out.push({ file, obj: doc.toJS() as K8sObject });
    }
  }
  return out;
}

/** The model class of `apiVersion`/`kind` from kubernetes-models or @kubernetes-models/keda. */
async function modelOf(apiVersion: string, kind: string): Promise<new (o: unknown) => { validate(): void }> {
  const module = apiVersion.startsWith('keda.sh/')
    ? `@kubernetes-models/keda/${apiVersion}`
    : `kubernetes-models/${apiVersion}`;
  const models = (await import(module)) as Record<string, new (o: unknown) => { validate(): void }>;
  const model = models[kind];
  assert.ok(model, `no schema for ${apiVersion} ${kind}`);
  return model;
}

type Container = {
  name: string;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
};
type PodSpec = { terminationGracePeriodSeconds?: number; containers: Container[] };

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  const all = manifests();
  const find = (kind: string, name: string) =>
    all.find((m) => m.obj.kind === kind && m.obj.metadata.name === name)?.obj;

  it('holds the objects the deployment needs', () => {
    const kinds = all.map((m) => `${m.obj.kind}/${m.obj.metadata.name}`).sort();
    for (const k of [
      'ConfigMap/client-certificates-config',
      'Secret/client-certificates-secrets',
      'Deployment/client-certificates-api',
      'Service/client-certificates-api',
      'HorizontalPodAutoscaler/client-certificates-api',
      'PodDisruptionBudget/client-certificates-api',
      'Deployment/client-certificates-worker',
      'ScaledObject/client-certificates-worker',
      'HorizontalPodAutoscaler/client-certificates-worker',
    ]) {
      assert.ok(kinds.includes(k), `missing ${k} in ${kinds.join(', ')}`);
    }
  });

  for (const { file, obj } of all) {
    it(`${file}: ${obj.kind} ${obj.metadata.name} is valid against its schema`, async () => {
      const Model = await modelOf(obj.apiVersion, obj.kind);
      new Model(obj).validate();
    });
  }

  it('rejects an invalid object (the schemas are really checked)', async () => {
    const Model = await modelOf('apps/v1', 'Deployment');
    const bad = structuredClone(find('Deployment', 'client-certificates-api')!) as unknown as {
      spec: { replicas: unknown };
    };
    bad.spec.replicas = 'two';
    assert.throws(() => new Model(bad).validate());
  });

  for (const component of ['api', 'worker']) {
    it(`${component}: probes on /health/live and /health/ready, a grace period above the drain timeout`, () => {
      const d = find('Deployment', `client-certificates-${component}`) as unknown as {
        spec: { template: { spec: PodSpec } };
      };
      const pod = d.spec.template.spec;
      const c = pod.containers[0]!;
      assert.equal(c.livenessProbe?.httpGet?.path, '/health/live');
      assert.equal(c.readinessProbe?.httpGet?.path, '/health/ready');
      const portName = c.readinessProbe?.httpGet?.port;
      const port = c.ports?.find((p) => p.name === portName)?.containerPort;
      assert.ok(port, `probe port ${String(portName)} is not a container port`);
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
      if (component === 'api') assert.equal(Number(env.PORT), port);
      else assert.equal(Number(env.WORKER_HEALTH_PORT), port);
      const drainS = Number(env.SHUTDOWN_TIMEOUT_MS) / 1000;
      const preStopS = Number(c.lifecycle?.preStop?.exec?.command[1] ?? 0);
      assert.ok(drainS > 0, 'SHUTDOWN_TIMEOUT_MS must be set explicitly');
      assert.ok(
        pod.terminationGracePeriodSeconds! >= drainS + preStopS,
        `grace ${pod.terminationGracePeriodSeconds} s < drain ${drainS} s + preStop ${preStopS} s`,
      );
    });

    it(`${component}: its environment is a configuration the service accepts`, () => {
      const d = find('Deployment', `client-certificates-${component}`) as unknown as {
        spec: { template: { spec: PodSpec } };
      };
      const c = d.spec.template.spec.containers[0]!;
      const secret = find('Secret', 'client-certificates-secrets') as unknown as {
        stringData: Record<string, string>;
      };
      const env: Record<string, string> = {};
      for (const from of c.envFrom ?? []) {
        const cm = find('ConfigMap', from.configMapRef!.name) as unknown as { data: Record<string, string> };
        assert.ok(cm, `no ConfigMap ${from.configMapRef!.name}`);
        Object.assign(env, cm.data);
      }
      for (const e of c.env ?? []) {
        if (e.value !== undefined) env[e.name] = e.value;
        const ref = e.valueFrom?.secretKeyRef;
        if (ref) {
          assert.equal(ref.name, 'client-certificates-secrets');
          assert.ok(ref.key in secret.stringData, `secret has no key ${ref.key}`);
          // The placeholder is not a key: stand in a valid one to check everything else.
          env[e.name] =
            ref.key === 'MASTER_KEY' ? Buffer.alloc(32, 1).toString('base64') : secret.stringData[ref.key]!;
        }
      }
      const config = loadConfig(env);
      assert.equal(config.nodeEnv, 'production');
      assert.ok(config.redisSentinels?.length, 'Sentinels configured');
      parseCredentials(secret.stringData['credentials.json']!);
    });
  }

  it('scales and protects the Deployments it names; the Service selects the API pods', () => {
    for (const m of all) {
      const o = m.obj as unknown as {
        kind: string;
        spec: { scaleTargetRef?: { name: string }; selector?: { matchLabels?: Record<string, string> } };
      };
      if (o.spec?.scaleTargetRef) {
        assert.ok(find('Deployment', o.spec.scaleTargetRef.name), `${o.kind} targets a missing Deployment`);
      }
    }
    const svc = find('Service', 'client-certificates-api') as unknown as {
      spec: { selector: Record<string, string> };
    };
    const api = find('Deployment', 'client-certificates-api') as unknown as {
      spec: { template: { metadata: { labels: Record<string, string> } } };
    };
    for (const [k, v] of Object.entries(svc.spec.selector))
      assert.equal(api.spec.template.metadata.labels[k], v);
    const keda = find('ScaledObject', 'client-certificates-worker') as unknown as {
      spec: { triggers: { metadata: Record<string, string> }[] };
    };
    const prefix = (
      find('ConfigMap', 'client-certificates-config') as unknown as { data: { REDIS_PREFIX: string } }
    ).data.REDIS_PREFIX;
    // BullMQ's waiting list under the service's queue prefix (shared/keys.ts queuePrefix, shared/jobs.ts).
    assert.equal(keda.spec.triggers[0]!.metadata.listName, `{${prefix}}:client-certificates:wait`);
  });
});
