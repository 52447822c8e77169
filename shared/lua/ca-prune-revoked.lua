--[[
  CA mode: removes one tenant's revocations whose certificate expired before `now`, at most `limit` per
  call (delete-revoking.lua does the same on each delete; this bounds a tenant that deletes no more).
  The CRL and OCSP stop reading an entry at its notAfter anyway.

  Input:
    KEYS[1] revoked    the tenant's revoked serials (sorted set, serial → notAfter, epoch s)
    KEYS[2] revokedAt  the tenant's revocation times (hash, serial → epoch ms)
    ARGV[1] now        epoch s: entries whose notAfter is before it go
    ARGV[2] limit      most entries removed by this call

  Output:
    how many entries were removed (limit: call again, there may be more)
]]
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #gone == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(gone))
redis.call('HDEL', KEYS[2], unpack(gone))
return #gone
