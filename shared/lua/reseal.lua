--[[
  Replaces a certificate's sealed private key only if it is still the one that was read, so a record
  deleted or re-sealed meanwhile is never recreated or undone (npm run rekey).

  Input:
    KEYS[1] cert   the certificate's hash
    ARGV[1] the sealed key as read
    ARGV[2] its replacement

  Output:
    1 replaced, 0 the record is gone, -1 its sealed key changed
]]
local cur = redis.call('HGET', KEYS[1], 'key')
if cur == ARGV[1] then
  redis.call('HSET', KEYS[1], 'key', ARGV[2])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return -1
