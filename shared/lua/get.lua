--[[
  Reads a certificate and its tags in one atomic round trip: one command instead of
  MULTI/HGETALL/HGETALL/EXEC, which on the Get path costs a pipeline object and three more commands.

  Input:
    KEYS[1] cert   the certificate's hash
    KEYS[2] tags   its tags' hash

  Output:
    { cert fields, tag fields }, each a flat HGETALL reply (empty when absent)
]]
return { redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]) }
