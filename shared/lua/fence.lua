--[[
  Whether a certificate exists; when it does, writes the tenant's fence key after it, so a WAIT on the
  caller's connection afterwards covers the certificate whichever connection created it.

  Input:
    KEYS[1] cert    the certificate's hash
    KEYS[2] fence   the tenant's fence key (expires after 10 s)

  Output:
    1 the certificate exists (and the fence was written after it), 0 it does not
]]
-- A provisional record (create.lua) is nobody's certificate until its Generate commits it.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'provisional') == 1 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', 10000)
return 1
