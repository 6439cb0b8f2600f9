-- Redis's clock, read on the server that holds KEYS[1] (src/redis-clock.ts): every instance names the same key, so
-- every instance reads the same server, that of a cluster included. The key is neither read nor written.
return redis.call('TIME')
