--[[
  Merges tags into a certificate's tags, never leaving more than max.

  Input:
    KEYS[1] cert   the certificate's hash
    KEYS[2] tags   its tags' hash
    ARGV[1] max    tags a certificate may have
    ARGV[2..]      key/value pairs

  Output:
    1 merged, 0 not found, -2 too many tags (nothing written)
]]
-- A provisional record (create.lua) is nobody's certificate until its Generate commits it.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'provisional') == 1 then return 0 end
local added = 0
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then added = added + 1 end
end
if redis.call('HLEN', KEYS[2]) + added > tonumber(ARGV[1]) then return -2 end
if #ARGV > 1 then
  local kv = {}
  for i = 2, #ARGV do kv[#kv + 1] = ARGV[i] end
  redis.call('HSET', KEYS[2], unpack(kv))
end
return 1
