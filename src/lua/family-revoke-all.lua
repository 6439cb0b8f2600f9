-- KEYS[1] user's family index; ARGV[1] familyKeyPrefix, ARGV[2] a family id to keep ('' = none), ARGV[3] how long
-- ended families are remembered (ms), ARGV[4] the user's ended families (family-revoke.lua says why both).
-- Returns the ids of the families that were live and are now revoked; nil, revoking nothing, when the family to keep
-- is not live (its holder's session ended first: the caller must not act for it).
if ARGV[2] ~= '' and not redis.call('HMGET', ARGV[1] .. ARGV[2], 'c')[1] then
  return false
end
local revoked = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[2] then
    if redis.call('DEL', ARGV[1] .. id) == 1 then
      revoked[#revoked + 1] = id
    end
    redis.call('ZREM', KEYS[1], id)
  end
end
if #revoked > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for _, id in ipairs(revoked) do
    redis.call('ZADD', ARGV[4], now, id)
  end
  redis.call('ZREMRANGEBYSCORE', ARGV[4], '-inf', '(' .. (now - tonumber(ARGV[3])))
  redis.call('PEXPIRE', ARGV[4], ARGV[3])
end
return revoked
