-- One admin login attempt, counted before its password is checked, so concurrent attempts cannot all pass
-- a check that reads the counters first. Every attempt counts as a failure until login_success.lua undoes it.
-- KEYS[1] attempts of this user from this address, KEYS[2] attempts of this user from any address,
-- KEYS[3] present when this user logged in from this address before.
-- ARGV[1] address limit, ARGV[2] address lock seconds, ARGV[3] user limit, ARGV[4] user window seconds.
-- Answers {verdict, address count, user count}: 0 check the password, 1 address locked, 2 user throttled.
local address = redis.call('INCR', KEYS[1])
if address > tonumber(ARGV[1]) then
  return {1, address, 0}
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local user = redis.call('INCR', KEYS[2])
if user == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
if user > tonumber(ARGV[3]) and redis.call('EXISTS', KEYS[3]) == 0 then
  return {2, address, user}
end
return {0, address, user}
