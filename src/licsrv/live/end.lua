-- End a session as the client asked; or say why it is already gone.
-- KEYS[1] session key, KEYS[2] sessions zset, KEYS[3] tombstone; ARGV: session_id
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return redis.call('GET', KEYS[3]) or 0
