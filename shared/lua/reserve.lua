--[[
  Reserves an id for a Generate in flight, counted against the tenant's quota until it is created or
  its reservation expires. Expired reservations are dropped first.

  Input:
    KEYS[1] cert      the certificate's hash
    KEYS[2] index     the tenant's certificates (sorted set)
    KEYS[3] pending   reservations in flight (sorted set: id -> expiry, epoch ms)
    ARGV[1] id
    ARGV[2] ttlMs     how long the reservation lives
    ARGV[3] limit     certificates per tenant, existing plus pending; 0 = none

  Output:
    1 reserved, 0 id taken (exists or reserved), -2 quota reached
]]
local __t = redis.call('TIME'); local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. now)
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) >= limit then return -2 end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[1])
return 1
