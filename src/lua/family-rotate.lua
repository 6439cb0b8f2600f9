-- Rotation, grace and reuse detection of one refresh token, atomically.
-- The caller has verified the token's tag, so (familyId, generation) are genuine.
-- KEYS[1] family hash, KEYS[2] user's family index
-- ARGV: presentedHash, generation, successorHash, idleMs, graceMs, userAgent, ip, familyId, limitMax, limitWindowMs,
--       requestedAtMs (when the caller asked, on Redis's clock as the caller reads it: src/redis-clock.ts), endedMs
--       (how long ended families are remembered), endedKey (the user's ended families, in the same slot:
--       family-revoke.lua says why it is not among KEYS)
-- Returns {1, ttlMs, email} rotated | {2, ttlMs, email} grace | {3} reused (family revoked) | {0} invalid
--         | {4, retryAfterMs} limited (too many refreshes of this session in the window; nothing changed)
--         | {5} superseded (a late attempt: a superseded token asked for before the latest rotation; an older token
--           superseded within the grace window; or a token of a family a new login's cookie replaced, within the grace
--           window; nothing changed)
-- (the email rides along so the caller can mint the access token without a second round trip)
local f = redis.call('HMGET', KEYS[1], 'c', 'g', 'r', 'a', 'e', 'lw', 'ln', 'u2', 's', 'x', 'b', 'bt', 'bh')
if not f[1] then
  -- Replaced by a new login's cookie within the grace window (family-revoke.lua): this refresh was sent before the
  -- browser had that cookie, and it must not be told to clear it.
  if f[10] then
    return { 5 }
  end
  return { 0 }
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- How many superseded generations' times are kept at most: the same name in src/family-store.ts says why.
local SUPERSEDED_TIMES_KEPT = 8

-- When each superseded generation the family keeps a time for was superseded, oldest first: the first generation
-- kept (b; without b, the one before the current) and the times of generations b .. current - 1. The store keeps b,
-- its time bt and bh "<b>:<ms>,<ms>,..." the milliseconds from each time to the next (a field a Redis hash keeps in
-- its compact encoding: under 64 bytes); the last, the one before the current, was superseded at r.
-- A release before bh kept b and bt alone, and may leave bh from an earlier run (its b is another) or fewer times than
-- generations: then each generation without a time of its own takes the one before it, which is no later than its
-- own, so no token outlives its window.
local function supersededTimes (current)
  local from = tonumber(f[11])
  if not from then
    return current - 1, { tonumber(f[3]) }
  end
  local count = current - from
  local last = tonumber(f[12])
  local times = { last }
  local anchor, gaps = string.match(f[13] or '', '^(%d+):([%d,]*)$')
  if tonumber(anchor) == from then
    for gap in string.gmatch(gaps, '%d+') do
      last = last + tonumber(gap)
      times[#times + 1] = last
    end
  end
  while #times < count - 1 do times[#times + 1] = last end
  times[count] = tonumber(f[3])
  return from, times
end

local function clearRun ()
  if f[11] or f[13] then
    redis.call('HDEL', KEYS[1], 'b', 'bt', 'bh')
  end
end

-- Per-session rate limit, shared by every instance at no extra round trip: a fixed window
-- (lw = window start, ln = refreshes in it) kept in the family itself. Every answer below counts.
local limitWindow = tonumber(ARGV[10])
local windowStart = tonumber(f[6]) or 0
local count = tonumber(f[7]) or 0
if now - windowStart >= limitWindow then
  windowStart = now
  count = 0
end
if count >= tonumber(ARGV[9]) then
  return { 4, windowStart + limitWindow - now }
end
count = count + 1
local current = tonumber(f[2])
local presented = tonumber(ARGV[2])
local grace = tonumber(ARGV[5])

-- The current token rotates. So does a genuine token of a later generation than the store's: only writes the
-- store lost (a failover to a replica they had not reached, a restart without persistence) leave the store
-- behind a token it issued, and no one can mint one (the tag), so it is taken as current and the session
-- survives the loss instead of ending on its next refresh.
if (presented == current and f[1] == ARGV[1]) or presented > current then
  local ttl = math.min(tonumber(ARGV[4]), tonumber(f[4]) * 1000 - now)
  if ttl <= 0 then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[8])
    return { 0 }
  end
  -- One write for the rotation, the client that made it and the refresh counted against the limit:
  -- this is the path a load of refreshes takes.
  redis.call('HSET', KEYS[1], 'c', ARGV[3], 'g', presented + 1, 'r', now, 's', ARGV[11],
    'u1', string.sub(ARGV[6], 1, 64), 'ip', ARGV[7], 'lw', windowStart, 'ln', count)
  -- The generations superseded within the grace window, and when each was (supersededTimes): the latest of them is
  -- the one superseded at r. Most refreshes come long after the one before and keep nothing.
  if grace > 0 and now - tonumber(f[3]) < grace and current > 0 then
    local from, times = supersededTimes(current)
    -- Generations the store lost (a token ahead of it) were superseded after its latest rotation.
    for _ = current + 1, presented do times[#times + 1] = tonumber(f[3]) end
    -- Those whose window has closed are never asked for again; past SUPERSEDED_TIMES_KEPT (a client refreshing one
    -- session far faster than any browser), the oldest are let go too and count as reuse, as they did before.
    -- The latest, at r, is within the window (the condition above), so it is always kept.
    local keep = 1
    while now - times[keep] >= grace or #times - keep >= SUPERSEDED_TIMES_KEPT do
      keep = keep + 1
    end
    local gaps = {}
    for i = keep + 1, #times do gaps[#gaps + 1] = math.max(0, times[i] - times[i - 1]) end
    redis.call('HSET', KEYS[1], 'b', from + keep - 1, 'bt', times[keep])
    if #gaps > 0 then
      redis.call('HSET', KEYS[1], 'bh', (from + keep - 1) .. ':' .. table.concat(gaps, ','))
    elseif f[13] then
      redis.call('HDEL', KEYS[1], 'bh')
    end
  else
    clearRun()
  end
  -- The user agent's second half only when it has one (family-create.lua), and none left from a longer one.
  if #ARGV[6] > 64 then
    redis.call('HSET', KEYS[1], 'u2', string.sub(ARGV[6], 65, 128))
  elseif f[8] then
    redis.call('HDEL', KEYS[1], 'u2')
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], 'XX', now, ARGV[8])
  return { 1, ttl, f[5] }
end

-- The immediate parent, again, shortly after its rotation (concurrent tabs, a retried request):
-- its successor is already current, so the caller hands out that same token. No parent hash is
-- stored: a genuine token of the previous generation whose derived successor is the current
-- token can only be the parent.
local isParentInGrace = presented == current - 1 and grace > 0 and now - tonumber(f[3]) < grace and f[1] == ARGV[3]

-- A superseded token asked for before the latest rotation was (s: when its caller asked) is a late attempt of a
-- refresh the caller has answered since, whose client then refreshed on (a command the client retried past its
-- deadline while a cluster failed over, or one a stalled server ran late), not a copy presented after the token was
-- superseded: refused below, and the family kept. A replay racing the rotation it would be caught by is refused the
-- same way, and caught on its next try.
-- So is an older token superseded within the grace window (less than the window ago, by the rotation that superseded
-- it, however many came after): a browser's tabs refreshing at once through several instances, one tab's request
-- reaching its instance after another tab, already holding the successor, had rotated that too. Its sender gets no
-- token, only the advice to present the cookie it holds now; a copy presented after the window is caught.
local supersededInGrace = false
if grace > 0 and presented < current then
  local from, times = supersededTimes(current)
  local at = times[presented - from + 1]
  supersededInGrace = at ~= nil and now - at < grace
end
if presented < current and not isParentInGrace and not supersededInGrace and tonumber(ARGV[11]) >= (tonumber(f[9]) or 0) then
  -- A genuine token of this family that is no longer valid: someone kept a copy. Revoke the family.
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[8])
  redis.call('ZADD', ARGV[13], now, ARGV[8])
  redis.call('ZREMRANGEBYSCORE', ARGV[13], '-inf', '(' .. (now - tonumber(ARGV[12])))
  redis.call('PEXPIRE', ARGV[13], ARGV[12])
  return { 3 }
end

redis.call('HSET', KEYS[1], 'lw', windowStart, 'ln', count)
if isParentInGrace then
  return { 2, redis.call('PTTL', KEYS[1]), f[5] }
end
if presented < current then
  return { 5 }
end
-- The current generation with a digest that does not match.
return { 0 }
