--[[
  Stores a new certificate, only while its reservation is live (judged by Redis's clock), and ends
  the reservation. A provisional one (the API's Generates) is stored invisible instead: marked
  `provisional`, left out of the index, its reservation kept (it still counts against the quota), and
  both hashes expiring when the reservation does. Only commit.lua, run by the API that answers 201,
  makes it a certificate; otherwise Redis itself removes it, record, tags and sealed key, at the
  reservation's expiry, whatever became of the API.

  Input:
    KEYS[1] cert      the certificate's hash
    KEYS[2] tags      its tags' hash
    KEYS[3] index     the tenant's certificates (sorted set)
    KEYS[4] pending   reservations in flight (sorted set: id -> expiry, epoch ms)
    ARGV[1] id
    ARGV[2] nf        number of fields, followed by nf field/value pairs
    ARGV[3 + 2*nf]    nt: number of tags, followed by nt key/value pairs
    ARGV[4 + 2*nf + 2*nt]  '1' provisional, '0' (or absent) a certificate at once

  Output:
    1 created, 0 already exists (a re-run job), -1 the reservation is gone (the caller gave up)
]]
local __t = redis.call('TIME'); local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local exp = redis.call('ZSCORE', KEYS[4], ARGV[1])
if not exp or tonumber(exp) < now then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return -1
end
local nf = tonumber(ARGV[2])
local fields = {}
for i = 3, 2 + nf * 2 do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
local base = 3 + nf * 2
local nt = tonumber(ARGV[base])
if nt > 0 then
  local tags = {}
  for i = base + 1, base + nt * 2 do tags[#tags + 1] = ARGV[i] end
  redis.call('HSET', KEYS[2], unpack(tags))
end
if ARGV[base + nt * 2 + 1] == '1' then
  redis.call('HSET', KEYS[1], 'provisional', '1')
  redis.call('PEXPIREAT', KEYS[1], exp)
  if nt > 0 then redis.call('PEXPIREAT', KEYS[2], exp) end
  return 1
end
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
