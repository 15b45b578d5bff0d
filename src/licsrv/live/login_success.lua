-- A login succeeded: its address starts afresh, its attempt no longer counts against the user, and the
-- address is remembered as one this user logs in from.
-- KEYS as login_attempt.lua; ARGV[1] how long the address is remembered (seconds).
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('DECR', KEYS[2]) <= 0 then
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[3], 1, 'EX', ARGV[1])
return 1
