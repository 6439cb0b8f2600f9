-- KEYS[1] account hash. ARGV: id.
-- Deletes the account only when it carries this id: the email may have been taken again by a new account since the
-- id's pointer was read, and that one is not the caller's to delete. Returns 1 when deleted, 0 otherwise.
if redis.call('HMGET', KEYS[1], 'id')[1] ~= ARGV[1] then
  return 0
end
return redis.call('DEL', KEYS[1])
