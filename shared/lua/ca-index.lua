--[[
  CA mode: records which tenant and certificate a CA-issued serial belongs to (what OCSP reads), and
  when the certificate expires, so the entry can be pruned once it has (prune-expired.lua). Idempotent: the
  worker writes it before the record is stored, and with REDIS_WAIT_REPLICAS the API writes it again on
  the connection its WAIT covers before the Generate's 201.

  Input:
    KEYS[1] serials    serial → `account:region:id` (hash)
    KEYS[2] expiry     serial → notAfter, epoch s (sorted set)
    ARGV[1] serial     lowercase hex, no leading zeros
    ARGV[2] owner      `account:region:id`
    ARGV[3] notAfter   epoch s

  Output:
    1 (always)
]]
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[1])
return 1
