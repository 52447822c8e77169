--[[
  GCRA (a token bucket without a refill timer): one key per account and region holding the
  "theoretical arrival time" of the next request. Runs with Redis's clock, so every API replica
  shares one budget and replica clocks do not matter.

  Input:
    KEYS[1] state     the tenant's throttle key
    ARGV[1] interval  emission interval, ms (1000 / rps)
    ARGV[2] burst     requests an idle tenant may make at once

  Output:
    0 allowed, else the ms to wait before the next request would be
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local newTat = tat + interval
local allowAt = newTat - burst * interval
if now < allowAt then return math.ceil(allowAt - now) end
redis.call('SET', KEYS[1], tostring(newTat), 'PX', math.ceil(newTat - now) + 1000)
return 0
