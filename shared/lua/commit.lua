--[[
  Makes a provisional certificate (create.lua) a certificate, only while its reservation is live
  (judged by Redis's clock): the API runs it before answering 201, and answers 201 only on 1. A
  record already committed (or stored as a certificate at once) answers 1 again, so a retry after a
  lost reply learns the outcome. Past the reservation, the provisional record is removed and its id
  released: that Generate is answered with an error and its certificate never becomes visible.

  Input:
    KEYS[1] cert      the certificate's hash
    KEYS[2] tags      its tags' hash
    KEYS[3] index     the tenant's certificates (sorted set)
    KEYS[4] pending   reservations in flight (sorted set: id -> expiry, epoch ms)
    ARGV[1] id
    ARGV[2] 'read' (optional): also return the certificate, as the API needs it for its answer, so
            the read and the commit are one round trip; and leave a missing record's id alone

  Output:
    1 it is a certificate, 0 it is not and never will be
    with 'read': { 1, cert fields, tag fields } (HGETALL replies) once it is a certificate;
                 { 0 } when there is no record (nothing changed: the caller settles);
                 { -1 } when it never will be
]]
local __t = redis.call('TIME'); local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
local read = ARGV[2] == 'read'
local function committed()
  if read then return { 1, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]) } end
  return 1
end
local function never()
  if read then return { -1 } end
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if read then return { 0 } end
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 0
end
if redis.call('HEXISTS', KEYS[1], 'provisional') == 0 then return committed() end
local exp = redis.call('ZSCORE', KEYS[4], ARGV[1])
if not exp or tonumber(exp) < now then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[4], ARGV[1])
  return never()
end
redis.call('HDEL', KEYS[1], 'provisional')
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return committed()
