--[[
  The places of a bulk batch's next jobs (shared/scheduler.ts, docs/scheduling.md): consecutive
  positions from max(Vb, where the batch left off), Vb being the lowest bulk position waiting in
  BullMQ's `prioritized` set (0 when none waits), so batches running at once alternate job by job.
  Scores in `prioritized` are priority * 2^32 + an arrival counter (formatted with %.0f: Lua's %.14g
  would round them).

  Input:
    KEYS[1] batch        the batch's next position (string)
    KEYS[2] prioritized  BullMQ's waiting jobs with a priority (read only)
    ARGV[1] count        jobs to place
    ARGV[2] ttlMs        how long the batch's position is kept (its jobs' lifetime)
    ARGV[3] bulkBase     the first bulk priority
    ARGV[4] maxPriority  BullMQ's highest priority

  Output:
    the priority of the first of the `count` jobs; the others follow it one by one
]]
local SHIFT = 4294967296
local BULK = tonumber(ARGV[3])
local function score(p) return string.format('%.0f', p * SHIFT) end
local vb = 0
local lowest = redis.call('ZRANGEBYSCORE', KEYS[2], score(BULK), '(' .. score(tonumber(ARGV[4]) + 1),
  'WITHSCORES', 'LIMIT', 0, 1)
if lowest[2] then vb = math.floor(tonumber(lowest[2]) / SHIFT) - BULK end
local pos = tonumber(redis.call('GET', KEYS[1]) or '0')
if pos < vb then pos = vb end
redis.call('SET', KEYS[1], pos + tonumber(ARGV[1]), 'PX', ARGV[2])
return BULK + pos
