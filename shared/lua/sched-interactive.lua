--[[
  The place of an account's next interactive job (shared/scheduler.ts, docs/scheduling.md): priority
  V + n, where n is the number of the account's interactive jobs waiting or running (all regions) and V
  the lowest interactive priority waiting in BullMQ's `prioritized` set (1 when none waits), capped
  below the bulk range. Entries past their deadline are dropped first.

  Scores in `prioritized` are priority * 2^32 + an arrival counter; they are formatted with %.0f, as
  Lua's default format (%.14g) would round them.

  Input:
    KEYS[1] account      the account's interactive jobs (sorted set: job id -> deadline, epoch ms)
    KEYS[2] prioritized  BullMQ's waiting jobs with a priority (read only)
    KEYS[3] wait         BullMQ's waiting jobs without one: a dead worker's, run first (read only)
    KEYS[4] active       BullMQ's running jobs (read only)
    ARGV[1] mode         'place': count the job as the account's and return its priority and the
                         account's jobs in flight before it;
                         'ahead': only say what would run before the account's next job
    ARGV[2] bulkBase     the first bulk priority
    ARGV[3] jobId        (place) the job's id
    ARGV[4] deadline     (place) epoch ms after which the job no longer counts

  Output:
    place: { the job's priority, the account's interactive jobs waiting or running before it }
    ahead: { jobs that would run before it, jobs running, the account's jobs in flight }
]]
local __t = redis.call('TIME'); local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
local SHIFT = 4294967296
local BULK = tonumber(ARGV[2])
local function score(p) return string.format('%.0f', p * SHIFT) end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local mine = redis.call('ZCARD', KEYS[1])
local v = 1
local lowest = redis.call('ZRANGEBYSCORE', KEYS[2], score(1), '(' .. score(BULK), 'WITHSCORES', 'LIMIT', 0, 1)
if lowest[2] then v = math.floor(tonumber(lowest[2]) / SHIFT) end
local p = v + mine
if p > BULK - 1 then p = BULK - 1 end

if ARGV[1] == 'ahead' then
  local ahead = redis.call('ZCOUNT', KEYS[2], score(1), '(' .. score(p + 1)) + redis.call('LLEN', KEYS[3])
  return { ahead, redis.call('LLEN', KEYS[4]), mine }
end

local deadline = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], deadline, ARGV[3])
if redis.call('PTTL', KEYS[1]) < deadline - now then redis.call('PEXPIRE', KEYS[1], deadline - now) end
return { p, mine }
