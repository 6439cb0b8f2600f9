-- KEYS[1] account hash. ARGV: id, replacing (the hash the caller verified), passwordHash.
-- Sets the hash only on the account that carries this id: an id pointer left behind by a failed registration
-- must never write a half account, nor into another user's. And only over the hash the caller verified a password
-- against: a password change or a rehash that got there first is never overwritten (a slow login's rehash of the
-- old password would otherwise undo a change). Returns 1 when set, 0 otherwise.
local current = redis.call('HMGET', KEYS[1], 'id', 'h')
if current[1] ~= ARGV[1] or current[2] ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'h', ARGV[3])
return 1
