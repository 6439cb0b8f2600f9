-- KEYS[1] account hash. ARGV: id, passwordHash.
-- Sets the hash only on the account that carries this id: an id pointer left behind by a failed registration
-- must never write a half account, nor into another user's. Returns 1 when set, 0 otherwise.
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'h', ARGV[2])
return 1
