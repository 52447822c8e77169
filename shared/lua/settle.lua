--[[
  Gives up a reservation whose job did not answer in time: a certificate stored at once (not
  provisional) exists after all; otherwise the id is released, so a late job can no longer create
  it, and a provisional record of it is removed with its sealed key (its tags' hash expires with the
  reservation, see create.lua). Never commits: so when its reply is lost, the caller's error answer
  is still true.

  Input:
    KEYS[1] cert      the certificate's hash
    KEYS[2] pending   reservations in flight (sorted set)
    ARGV[1] id

  Output:
    1 the certificate exists, 0 it does not and never will
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HEXISTS', KEYS[1], 'provisional') == 0 then return 1 end
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
