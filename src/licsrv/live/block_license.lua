-- Block a license (suspend, revoke): leave the block marker that start refuses, and end every live session
-- with a tombstone, in one step, so no start that read the license as active can leave a session behind.
-- KEYS[1] sessions zset, KEYS[2] block marker; ARGV: reason, tombstone ttl ms, session prefix, tombstone prefix
-- Returns the ended session ids.
redis.call('SET', KEYS[2], ARGV[1])
local ended = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('DEL', ARGV[3] .. member) == 1 then
    redis.call('SET', ARGV[4] .. member, ARGV[1], 'PX', ARGV[2])
    table.insert(ended, member)
  end
end
redis.call('DEL', KEYS[1])
return ended
