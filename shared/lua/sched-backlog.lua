--[[
  Jobs waiting, by class (shared/scheduler.ts): interactive priorities are below the bulk base, bulk
  ones from it; jobs without a priority (a dead worker's, put back by BullMQ) are `requeued`.

  Input:
    KEYS[1] prioritized  BullMQ's waiting jobs with a priority (score priority * 2^32 + counter)
    KEYS[2] wait         BullMQ's waiting jobs without one
    ARGV[1] bulkBase     the first bulk priority

  Output:
    { interactive, bulk, requeued }
]]
local bulk = string.format('%.0f', tonumber(ARGV[1]) * 4294967296)
return { redis.call('ZCOUNT', KEYS[1], '1', '(' .. bulk), redis.call('ZCOUNT', KEYS[1], bulk, '+inf'),
  redis.call('LLEN', KEYS[2]) }
