--[[
  Sets or removes a certificate's description.

  Input:
    KEYS[1] cert   the certificate's hash
    ARGV[1] 'set' or 'del'
    ARGV[2] the description ('set' only)

  Output:
    1 updated, 0 not found
]]
-- A provisional record (create.lua) is nobody's certificate until its Generate commits it.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'provisional') == 1 then return 0 end
if ARGV[1] == 'set' then redis.call('HSET', KEYS[1], 'description', ARGV[2]) else redis.call('HDEL', KEYS[1], 'description') end
return 1
