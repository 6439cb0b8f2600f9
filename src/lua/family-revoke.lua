-- KEYS[1] family hash, KEYS[2] user's family index; ARGV[1] familyId. Returns 1 when the family was live.
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
