-- Records a new refresh-token family and caps the user's live families.
-- KEYS[1] family hash, KEYS[2] user's family index (zset familyId -> last use ms); both carry the {userId} hash tag.
-- ARGV: tokenHash, familyId, idleMs, absoluteMs, maxFamilies, userAgent, ip, familyKeyPrefix, email, endedMs,
--       endedKey (the user's ended families, in the same slot: family-revoke.lua), replacingKey (the families sign-ins
--       are replacing, below; same slot, named in ARGV for the same reason), then the ids of the user's families the new
--       one replaces (the sign-in's own refresh cookie), which the caller ends right after
-- Returns { ttlMs, evictedFamilyId... }
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle = tonumber(ARGV[3])
local absolute = tonumber(ARGV[4])
local max = tonumber(ARGV[5])

-- The user agent (compacted, at most 128 bytes) is split in two fields of at most 64 bytes, so the
-- hash stays in Redis's compact listpack encoding; most compacted browser agents need only the first.
-- Created and absolute-expiry times in seconds: small integers take 5 bytes in a listpack, not 9.
redis.call('HSET', KEYS[1], 'c', ARGV[1], 'g', 0, 'r', now, 't', math.floor(now / 1000), 'a', math.floor((now + absolute) / 1000),
  'u1', string.sub(ARGV[6], 1, 64), 'ip', ARGV[7], 'e', ARGV[9])
if #ARGV[6] > 64 then
  redis.call('HSET', KEYS[1], 'u2', string.sub(ARGV[6], 65, 128))
end
local ttl = math.min(idle, absolute)
redis.call('PEXPIRE', KEYS[1], ttl)

-- Entries idle longer than the idle TTL belong to families Redis has already expired.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - idle))
redis.call('ZADD', KEYS[2], now, ARGV[2])
-- The index must outlive every family it lists; a family never outlives its absolute lifetime.
if redis.call('PTTL', KEYS[2]) < absolute then
  redis.call('PEXPIRE', KEYS[2], absolute)
end

-- A family about to be replaced is not counted: a sign-in at the cap in a browser that holds one of the user's sessions
-- takes that session's place, and signs none of the user's other devices out. A live family (its hash has a digest: a
-- replaced one keeps only its marker, family-revoke.lua) is in the index; its key shares the index's slot, and is read
-- as family-revoke-all.lua reads one.
local replacing = {}
local replaced = 0
for i = 13, #ARGV do
  local id = ARGV[i]
  if id ~= ARGV[2] and not replacing[id] and redis.call('HMGET', ARGV[8] .. id, 'c')[1] then
    replacing[id] = true
    replaced = replaced + 1
    -- Nor by another sign-in at the cap meanwhile (two browsers of the user signing in at once), while this one's
    -- family lives: "<replaced> <replacing>", kept as long as ended families are.
    redis.call('ZADD', ARGV[12], now, id .. ' ' .. ARGV[2])
  end
end
if replaced > 0 then
  redis.call('ZREMRANGEBYSCORE', ARGV[12], '-inf', '(' .. (now - tonumber(ARGV[10])))
  redis.call('PEXPIRE', ARGV[12], ARGV[10])
end

local result = { ttl }
local excess = redis.call('ZCARD', KEYS[2]) - replaced - max
local going = {}
local others = 0
if excess > 0 then
  -- Families other sign-ins are replacing are going too, unless the family replacing one has ended (its sign-in
  -- refused after all) or the one replaced has (the sign-in's caller ended it): such entries are done with.
  for _, entry in ipairs(redis.call('ZRANGE', ARGV[12], 0, -1)) do
    local space = string.find(entry, ' ', 1, true)
    local id, by = string.sub(entry, 1, space - 1), string.sub(entry, space + 1)
    if not replacing[id] and not going[id] then
      if redis.call('HMGET', ARGV[8] .. id, 'c')[1] and redis.call('HMGET', ARGV[8] .. by, 'c')[1] then
        going[id] = true
        others = others + 1
      else
        redis.call('ZREM', ARGV[12], entry)
      end
    end
  end
  excess = excess - others
end
if excess > 0 then
  -- Least recently used first, passing over those going and the new family, which is never evicted. It has the
  -- highest score, but a family used in the same millisecond ties with it, and ties are ordered by id: one candidate
  -- more, for the new family sorted among them.
  local candidates = redis.call('ZRANGE', KEYS[2], 0, excess + replaced + others)
  local evicting = 0
  for _, id in ipairs(candidates) do
    if evicting < excess and id ~= ARGV[2] and not replacing[id] and not going[id] then
      evicting = evicting + 1
      if redis.call('DEL', ARGV[8] .. id) == 1 then
        result[#result + 1] = id
        redis.call('ZADD', ARGV[11], now, id)
      end
      redis.call('ZREM', KEYS[2], id)
    end
  end
  if #result > 1 then
    redis.call('ZREMRANGEBYSCORE', ARGV[11], '-inf', '(' .. (now - tonumber(ARGV[10])))
    redis.call('PEXPIRE', ARGV[11], ARGV[10])
  end
end
return result
