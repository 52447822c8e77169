--[[
  Removes the members of a sorted set scored by an expiry (epoch s) that expired before `now`, and the
  same fields of a hash beside it, at most `limit` per call, earliest first. CA mode runs it on two pairs:
  - the serial index (ca-index.lua): `{prefix}:ca:serials:expiry` and `{prefix}:ca:serials`, so the index
    holds only unexpired certificates (OCSP answers `unknown` from a notAfter on anyway: api/ca-responder.ts);
  - each tenant's revocations: `revoked` (serial → notAfter) and `revokedAt` (serial → epoch ms), which
    delete-revoking.lua also trims on each delete; this bounds a tenant that deletes no more.

  Input:
    KEYS[1] expiry     member → expiry, epoch s (sorted set)
    KEYS[2] fields     member → anything (hash)
    ARGV[1] now        epoch s: members whose expiry is before it go
    ARGV[2] limit      most members removed by this call

  Output:
    how many members were removed (limit: call again, there may be more)
]]
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #gone == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(gone))
redis.call('HDEL', KEYS[2], unpack(gone))
return #gone
