-- Start a session: drop expired members, enforce max_sessions with the policy, write the session.
-- KEYS[1] sessions zset, KEYS[2] new session key, KEYS[3] the license's block marker
-- ARGV: now_ms, timeout_ms, max_sessions, policy, session_id, session prefix, tombstone prefix, zset ttl ms
local zset, key = KEYS[1], KEYS[2]
local now, timeout = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_sessions, policy, sid = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local sprefix, tprefix, zttl = ARGV[6], ARGV[7], tonumber(ARGV[8])

-- A suspension or revocation decided while this start was on its way wins: {2, {}, {}, reason}.
local blocked = redis.call('GET', KEYS[3])
if blocked then
  return {2, {}, {}, blocked}
end

local expired = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'WITHSCORES')
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', zset, '-inf', now)
end
-- A session is alive iff its key exists: a member whose key is gone ended no later than now.
local live = {}
for _, member in ipairs(redis.call('ZRANGE', zset, 0, -1)) do
  if redis.call('EXISTS', sprefix .. member) == 1 then
    table.insert(live, member)
  else
    redis.call('ZREM', zset, member)
    table.insert(expired, member)
    table.insert(expired, now)
  end
end

local replaced = {}
if #live >= max_sessions then
  if policy ~= 'replace' then
    return {0, expired, replaced}
  end
  -- The index is ordered by expiry: the sessions that heartbeated least recently go first.
  for i = 1, #live - max_sessions + 1 do
    local victim = live[i]
    redis.call('DEL', sprefix .. victim)
    redis.call('ZREM', zset, victim)
    redis.call('SET', tprefix .. victim, 'replaced', 'PX', timeout)
    table.insert(replaced, victim)
  end
end

redis.call('SET', key, 1, 'PX', timeout)
redis.call('ZADD', zset, now + timeout, sid)
redis.call('PEXPIRE', zset, zttl)
return {1, expired, replaced}
