--[[
  Removes tags from a certificate.

  Input:
    KEYS[1] cert   the certificate's hash
    KEYS[2] tags   its tags' hash
    ARGV[1..]      tag keys

  Output:
    1 done, 0 not found
]]
-- A provisional record (create.lua) is nobody's certificate until its Generate commits it.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'provisional') == 1 then return 0 end
if #ARGV > 0 then redis.call('HDEL', KEYS[2], unpack(ARGV)) end
return 1
