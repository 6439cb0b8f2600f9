-- KEYS[1] user's family index; ARGV[1] familyKeyPrefix.
-- Returns flat { nowMs, familyId, createdAt, lastUsedAt, absoluteExpiry, ttlMs, userAgent, ip, ... },
-- most recently used first, and drops index entries whose family has expired.
local t = redis.call('TIME')
local out = { tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) }
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local f = redis.call('HMGET', key, 't', 'r', 'a', 'u1', 'u2', 'ip')
  if f[1] then
    local n = #out
    out[n + 1] = id
    out[n + 2] = tonumber(f[1]) * 1000
    out[n + 3] = f[2]
    out[n + 4] = tonumber(f[3]) * 1000
    out[n + 5] = redis.call('PTTL', key)
    out[n + 6] = (f[4] or '') .. (f[5] or '')
    out[n + 7] = f[6] or ''
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
