--[[
  Deletes a certificate, its tags and its index entry.

  Input:
    KEYS[1] cert    the certificate's hash
    KEYS[2] tags    its tags' hash
    KEYS[3] index   the tenant's certificates (sorted set)
    ARGV[1] id

  Output:
    1 deleted, 0 not found
]]
-- A provisional record (create.lua) is nobody's certificate until its Generate commits it.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'provisional') == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
