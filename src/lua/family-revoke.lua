-- KEYS[1] family hash, KEYS[2] user's family index; ARGV[1] familyId, ARGV[2] how long ended families are remembered
-- (ms), ARGV[3] the user's ended families (a zset in the same slot), ARGV[4] how long the family, replaced by a new
-- login's cookie, answers a refresh as superseded (ms; 0: not replaced, revoked). Returns 1 when the family was live.
-- The ended-families key is named in ARGV, not KEYS, though it shares the {userId} slot: it usually does not exist,
-- and a script declaring a missing key beside existing ones is refused (TRYAGAIN) for as long as its slot migrates.
redis.call('ZREM', KEYS[2], ARGV[1])
-- A replaced family's tombstone (x, and no c) is not live; it is left to expire, so it keeps answering. HMGET, not
-- HEXISTS: the ACL the README gives grants the one (scripts' commands are checked against it too).
if not redis.call('HMGET', KEYS[1], 'c')[1] then
  return 0
end
redis.call('DEL', KEYS[1])
-- What is left of a replaced family: a mark that family-rotate.lua answers as superseded, for the grace window.
if tonumber(ARGV[4]) > 0 then
  redis.call('HSET', KEYS[1], 'x', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
-- Which families ended, for as long as their access tokens may be presented: a caller this script did not answer
-- in time reads them (FamilyStore.recentlyEnded), to revoke those access tokens.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', ARGV[3], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', ARGV[3], '-inf', '(' .. (now - tonumber(ARGV[2])))
redis.call('PEXPIRE', ARGV[3], ARGV[2])
return 1
