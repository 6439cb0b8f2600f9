-- KEYS[1] user's family index; ARGV[1] familyKeyPrefix, ARGV[2] a family id to keep ('' = none).
-- Returns the ids of the families that were live and are now revoked; nil, revoking nothing, when the family to keep
-- is not live (its holder's session ended first: the caller must not act for it).
if ARGV[2] ~= '' and redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 0 then
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
return revoked
