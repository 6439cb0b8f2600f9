-- KEYS[1] account hash keyed by normalised email. ARGV: id, email, passwordHash.
-- Returns 1 when created, 0 when the email is taken: the existence check and the write are one step.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'email', ARGV[2], 'h', ARGV[3])
return 1
