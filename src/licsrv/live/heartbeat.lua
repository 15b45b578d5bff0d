-- Extend a live session; or say why it is gone (a tombstone's reason, else 0 for expired).
-- KEYS[1] session key, KEYS[2] sessions zset, KEYS[3] tombstone
-- ARGV: timeout_ms, now_ms, session_id, zset ttl ms
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[2]) + tonumber(ARGV[1]), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 1
end
return redis.call('GET', KEYS[3]) or 0
