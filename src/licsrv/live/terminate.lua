-- End one session from the server side, leaving a tombstone with the reason. Returns 1 if it was live.
-- KEYS[1] session key, KEYS[2] sessions zset, KEYS[3] tombstone; ARGV: session_id, reason, tombstone ttl ms
local was_live = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if was_live == 1 then
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
end
return was_live
