--[[
  CA mode: removes the serial index entries (ca-index.lua) of certificates that expired before `now`,
  at most `limit` of them per call, so the index holds only unexpired certificates. An expired serial
  is then answered `unknown` over OCSP (as it already is from its notAfter on: api/ca-responder.ts).

  Input:
    KEYS[1] serials    serial → `account:region:id` (hash)
    KEYS[2] expiry     serial → notAfter, epoch s (sorted set)
    ARGV[1] now        epoch s: entries whose notAfter is before it go
    ARGV[2] limit      most entries removed by this call

  Output:
    how many entries were removed (limit: call again, there may be more)
]]
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #gone == 0 then return 0 end
redis.call('ZREM', KEYS[2], unpack(gone))
redis.call('HDEL', KEYS[1], unpack(gone))
return #gone
