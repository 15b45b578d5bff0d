-- Login attempts from one address for any username, counted before any password is checked.
-- KEYS[1] the address's count; ARGV[1] 1 counts an attempt, -1 undoes one that succeeded; ARGV[2] window (s).
if tonumber(ARGV[1]) < 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('DECR', KEYS[1]) <= 0 then
    redis.call('DEL', KEYS[1])
  end
  return 0
end
local attempts = redis.call('INCR', KEYS[1])
if attempts == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return attempts
