--[[
  CA mode's delete: deletes a certificate, its tags and its index entry, and records its revocation, in
  one step, so the record never disappears without it. Revocations past their notAfter are pruned.

  Input:
    KEYS[1] cert       the certificate's hash
    KEYS[2] tags       its tags' hash
    KEYS[3] index      the tenant's certificates (sorted set)
    KEYS[4] revoked    the tenant's revoked serials (sorted set, serial → notAfter, epoch s)
    KEYS[5] revokedAt  the tenant's revocation times (hash, serial → epoch ms)
    ARGV[1] id
    ARGV[2] serial     lowercase hex, no leading zeros
    ARGV[3] notAfter   epoch s
    ARGV[4] revokedAt  epoch ms
    ARGV[5] now        epoch s: entries whose notAfter is before it are pruned

  Output:
    1 deleted and revoked, 0 not found (nothing written)
]]
-- A provisional record (create.lua) is nobody's certificate until its Generate commits it.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'provisional') == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[5], ARGV[2], ARGV[4])
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[5])
if #gone > 0 then
  redis.call('ZREM', KEYS[4], unpack(gone))
  redis.call('HDEL', KEYS[5], unpack(gone))
end
return 1
