--[[
  Ends a reservation whose job did not answer: the certificate exists after all, or its id is
  released so a late job can no longer create it.

  Input:
    KEYS[1] cert      the certificate's hash
    KEYS[2] pending   reservations in flight (sorted set)
    ARGV[1] id

  Output:
    1 the certificate exists, 0 it does not and never will
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
