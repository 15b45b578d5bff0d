-- End every session of a license (suspend, revoke), leaving tombstones. Returns the ended session ids.
-- KEYS[1] sessions zset; ARGV: reason, tombstone ttl ms, session prefix, tombstone prefix
local ended = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('DEL', ARGV[3] .. member) == 1 then
    redis.call('SET', ARGV[4] .. member, ARGV[1], 'PX', ARGV[2])
    table.insert(ended, member)
  end
end
redis.call('DEL', KEYS[1])
return ended
