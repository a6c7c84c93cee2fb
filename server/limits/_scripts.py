"""The Lua scripts of the Redis backend; each runs atomically in Redis (no other command interleaves).

Counters (every key under the configured prefix):

    b:<budget>:<scope value>:<window start>      hash {spent, reserved}, nano-USD
    b:<...>:r                                    zset of reservations, member "<ticket>|<amount>", score = expiry ms
    r:<limit>:<scope value>                      string count; a fixed window that starts with its first request
    c:<limit>:<scope value>                      zset of leases, member = ticket, score = expiry ms

Expired reservations and leases are dropped by every script that reads them, so the slots and budget of a
replica killed mid-call come back once its entries expire (their TTL is renewed while the call runs). Amounts
are passed to Redis as the caller's integer text and compared as Lua numbers (doubles): exact up to 2^53
nano-USD, about 9 million USD per counter.

ADMIT  KEYS: per budget (hash, zset), per rate (count), per lease (zset)
       ARGV: now_ms, ticket, lease_ttl_ms, #budgets, #rates, #leases,
             per budget (limit, amount, hard 0|1, ttl_s), per rate (limit, window_ms, cost), per lease (limit)
       -> {"seed", i...} | {"refused", kind, i, a, b} | {"ok", per budget (spent, reserved), per rate (count, ms)}
"""

from __future__ import annotations

__all__ = ["ADMIT", "COMMIT", "PEEK", "RENEW", "SEED", "SPEND"]

_EXPIRE_RESERVATIONS = """
local function expire_reservations(h, z, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #gone > 0 then
    local total = 0
    for _, member in ipairs(gone) do
      total = total + tonumber(string.match(member, '|(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    redis.call('HINCRBY', h, 'reserved', string.format('%.0f', -total))
  end
end
"""

ADMIT = (
    _EXPIRE_RESERVATIONS
    + """
local now = tonumber(ARGV[1])
local ticket = ARGV[2]
local expiry = now + tonumber(ARGV[3])
local nb, nr, nc = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local missing = {}
for i = 1, nb do
  if redis.call('EXISTS', KEYS[2 * i - 1]) == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {'seed', unpack(missing)} end
local a, k = 7, 1
local spent, reserved = {}, {}
for i = 1, nb do
  local h, z = KEYS[k], KEYS[k + 1]
  expire_reservations(h, z, now)
  local values = redis.call('HMGET', h, 'spent', 'reserved')
  spent[i], reserved[i] = tonumber(values[1]) or 0, tonumber(values[2]) or 0
  local limit, amount, hard = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2]
  if hard == '1' and spent[i] + reserved[i] + amount > limit then
    return {'refused', 'budget', i, spent[i], reserved[i]}
  end
  a, k = a + 4, k + 2
end
local rate_a, rate_k = a, k
for i = 1, nr do
  local count = tonumber(redis.call('GET', KEYS[k]) or '0')
  local limit, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 2])
  if count > 0 and count + cost > limit then
    return {'refused', 'rate', i, count, redis.call('PTTL', KEYS[k])}
  end
  a, k = a + 3, k + 1
end
local lease_a, lease_k = a, k
for i = 1, nc do
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
  local held = redis.call('ZCARD', KEYS[k])
  if held >= tonumber(ARGV[a]) then return {'refused', 'concurrency', i, held, 0} end
  a, k = a + 1, k + 1
end
local result = {'ok'}
a, k = 7, 1
for i = 1, nb do
  local amount, ttl = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 3])
  redis.call('HINCRBY', KEYS[k], 'reserved', ARGV[a + 1])
  redis.call('ZADD', KEYS[k + 1], expiry, ticket .. '|' .. ARGV[a + 1])
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[k], ttl)
    redis.call('EXPIRE', KEYS[k + 1], ttl)
  end
  result[#result + 1] = spent[i]
  result[#result + 1] = reserved[i] + amount
  a, k = a + 4, k + 2
end
a, k = rate_a, rate_k
for i = 1, nr do
  redis.call('SET', KEYS[k], 0, 'PX', ARGV[a + 1], 'NX')
  result[#result + 1] = redis.call('INCRBY', KEYS[k], ARGV[a + 2])
  result[#result + 1] = redis.call('PTTL', KEYS[k])
  a, k = a + 3, k + 1
end
k = lease_k
for i = 1, nc do
  redis.call('ZADD', KEYS[k], expiry, ticket)
  redis.call('PEXPIRE', KEYS[k], 2 * tonumber(ARGV[3]))
  k = k + 1
end
return result
"""
)

# KEYS as ADMIT's. ARGV: ticket, actual_nano, actual_tokens, #budgets, #rates, #leases,
# per budget (reserved amount), per rate (estimated cost, 1 if tpm else 0).
COMMIT = """
local ticket, actual, tokens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local nb, nr, nc = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local a, k = 7, 1
for i = 1, nb do
  local h, z = KEYS[k], KEYS[k + 1]
  if redis.call('ZREM', z, ticket .. '|' .. ARGV[a]) == 1 then
    redis.call('HINCRBY', h, 'reserved', '-' .. ARGV[a])
  end
  -- A counter gone (Redis flushed) is left to be seeded from the store, which will hold this call's row.
  if actual > 0 and redis.call('EXISTS', h) == 1 then redis.call('HINCRBY', h, 'spent', ARGV[2]) end
  a, k = a + 1, k + 2
end
for i = 1, nr do
  if ARGV[a + 1] == '1' and redis.call('EXISTS', KEYS[k]) == 1 then
    local delta = tokens - tonumber(ARGV[a])
    local after = redis.call('INCRBY', KEYS[k], delta)
    if after < 0 then redis.call('SET', KEYS[k], 0, 'KEEPTTL') end
  end
  a, k = a + 2, k + 1
end
for i = 1, nc do
  redis.call('ZREM', KEYS[k], ticket)
  k = k + 1
end
return 1
"""

# KEYS: sorted sets; ARGV: expiry_ms, then one member per key. Only members still present are pushed back.
RENEW = """
local expiry = ARGV[1]
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', expiry, ARGV[i + 1]) end
return #KEYS
"""

# KEYS: per budget (hash, zset); ARGV: now_ms. -> {"seed", i...} | {spent, reserved, ...}
PEEK = (
    _EXPIRE_RESERVATIONS
    + """
local now = tonumber(ARGV[1])
local missing, result = {}, {}
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('EXISTS', h) == 0 then
    missing[#missing + 1] = i
  else
    expire_reservations(h, z, now)
    local values = redis.call('HMGET', h, 'spent', 'reserved')
    result[#result + 1] = tonumber(values[1]) or 0
    result[#result + 1] = tonumber(values[2]) or 0
  end
end
if #missing > 0 then return {'seed', unpack(missing)} end
return result
"""
)

# KEYS: budget hashes; ARGV: amounts. All or nothing: any counter missing -> {"seed", i...}.
SPEND = """
local missing = {}
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {'seed', unpack(missing)} end
for i = 1, #KEYS do redis.call('HINCRBY', KEYS[i], 'spent', ARGV[i]) end
return {'ok'}
"""

# KEYS: budget hash; ARGV: spent, ttl_s (0: none). Creates the counter unless another replica did first.
SEED = """
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'reserved', 0)
  if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
end
return 1
"""
