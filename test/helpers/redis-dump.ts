import type { Redis } from 'ioredis';

/** Every value of every key in the Redis database, whatever its type, as raw bytes. */
export async function dumpRedis(redis: Redis): Promise<{ key: string; type: string; values: Buffer[] }[]> {
  const out: { key: string; type: string; values: Buffer[] }[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scanBuffer(cursor, 'COUNT', 1000);
    cursor = String(next);
    for (const kb of keys) {
      const type = await redis.type(kb);
      let values: Buffer[];
      switch (type) {
        case 'string':
          values = [(await redis.getBuffer(kb)) ?? Buffer.alloc(0)];
          break;
        case 'hash':
          values = await redis
            .hgetallBuffer(kb)
            .then((h) => Object.entries(h).flatMap(([k, v]) => [Buffer.from(k), v]));
          break;
        case 'list':
          values = await redis.lrangeBuffer(kb, 0, -1);
          break;
        case 'set':
          values = await redis.smembersBuffer(kb);
          break;
        case 'zset':
          values = await redis.zrangeBuffer(kb, 0, -1, 'WITHSCORES');
          break;
        case 'stream': {
          const entries = (await redis.xrangeBuffer(kb, '-', '+')) as [Buffer, Buffer[]][];
          values = entries.flatMap(([id, fields]) => [id, ...fields]);
          break;
        }
        default:
          throw new Error(`unexpected Redis type ${type} for ${kb.toString()}`);
      }
      out.push({ key: kb.toString(), type, values: [kb, ...values] });
    }
  } while (cursor !== '0');
  return out;
}
