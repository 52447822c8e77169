import assert from 'node:assert/strict';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';

/** The real AWS SDK client pointed at a test server, with test/test credentials and no retries. */
export function sdkClient(url: string, region = 'us-east-1'): APIGatewayClient {
  return new APIGatewayClient({
    endpoint: url,
    region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

/** Asserts that `p` rejects with exactly this HTTP status, exception name and message, as the SDK surfaces them. */
export async function rejectsWith(
  p: Promise<unknown>,
  status: number,
  name: string,
  message: string,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(e.$metadata?.httpStatusCode, status, `status of ${e.name}: ${e.message}`);
    assert.equal(e.name, name);
    assert.equal(e.message, message);
    return true;
  });
}
