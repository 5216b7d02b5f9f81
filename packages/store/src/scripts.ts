/**
 * Lua scripts of the store. Each touches the keys of one hash tag, so one Redis Cluster slot,
 * and runs atomically: that is what makes seq allocation + ZADD one step (DESIGN.md invariant 1).
 */

/**
 * Append a batch to one (room, type).
 * KEYS: z (messages, score = seq), seq (counter), ids (dedup: member = id, score = seq),
 *       floor (highest seq trimmed by retention: a cursor below it has skipped messages)
 * ARGV: retention, dedupWindow, ttl (s), then pairs (id, json of the message without seq)
 * Every key of the stream expires ttl seconds after its last append, so Redis holds the rooms that
 * are live, not every room that ever was; the archive keeps the rest. Refreshing the expiry here
 * costs no round trip. A stream that expired starts again at seq 1; readers holding a cursor from
 * before get the newest window with skipped (READ_LUA: a cursor from the future).
 * Returns { newestSeq, then per message its seq, or -seq of the earlier copy when a duplicate }.
 * The stored JSON is the front's JSON with `"seq":N,` spliced in front, so nobody re-encodes it.
 */
export const APPEND_LUA = `
local z, seqKey, ids, floor = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local retention = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local seq = tonumber(redis.call('GET', seqKey) or '0')
local out = {0}
local added = 0
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local prior = redis.call('ZSCORE', ids, id)
  if prior then
    out[#out + 1] = -tonumber(prior)
  else
    seq = seq + 1
    redis.call('ZADD', z, seq, '{"seq":' .. seq .. ',' .. string.sub(ARGV[i + 1], 2))
    redis.call('ZADD', ids, seq, id)
    out[#out + 1] = seq
    added = added + 1
  end
end
if added > 0 then
  redis.call('SET', seqKey, seq)
  local excess = redis.call('ZCARD', z) - retention
  if excess > 0 then
    local cut = redis.call('ZRANGE', z, excess - 1, excess - 1, 'WITHSCORES')
    redis.call('SET', floor, cut[2])
    redis.call('ZREMRANGEBYRANK', z, 0, excess - 1)
  end
  redis.call('ZREMRANGEBYRANK', ids, 0, -(window + 1))
end
redis.call('EXPIRE', z, ttl)
redis.call('EXPIRE', seqKey, ttl)
redis.call('EXPIRE', ids, ttl)
redis.call('EXPIRE', floor, ttl)
out[1] = seq
return out
`;

/**
 * Read one (room, type) since a cursor. Flagged no-writes so it runs on a read replica.
 * KEYS: z, seq, floor
 * ARGV: cursor seq (-1 = none: the newest window), limit, notBefore (ms; 0 = any age)
 * Returns { newestSeq, skipped (0/1), json... }. A cursor older than retention (below the
 * floor), or from the future (the store was reset, or the room expired), gets the newest window
 * and skipped = 1 (invariant 4). With notBefore, a cursor whose next message is older than that
 * gets only the newest window's messages after the cursor stamped at or after notBefore, and
 * skipped = 1: stale comments are not worth replaying to a viewer who comes back. Deleted
 * messages leave holes in the set but never move the floor.
 */
export const READ_LUA = `#!lua flags=no-writes
local z = KEYS[1]
local c = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local notBefore = tonumber(ARGV[3] or '0')
local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
-- The front's JSON has one top-level "ts"; inside strings quotes are escaped, so no other match.
local function tsOf(m) return tonumber(string.match(m, '"ts":(%d+)')) or 0 end
local function recent(after)
  local out = {}
  for _, m in ipairs(redis.call('ZRANGE', z, -limit, -1)) do
    if tonumber(string.match(m, '^{"seq":(%d+)')) > after and tsOf(m) >= notBefore then out[#out + 1] = m end
  end
  return out
end
local skipped = 0
if c > newest then
  skipped = 1
elseif c == newest then
  return {newest, 0}
elseif c >= 0 then
  local floor = tonumber(redis.call('GET', KEYS[3]) or '0')
  if c >= floor then
    local msgs = redis.call('ZRANGEBYSCORE', z, '(' .. c, '+inf', 'LIMIT', 0, limit)
    if notBefore > 0 and #msgs > 0 and tsOf(msgs[1]) < notBefore then
      return {newest, 1, unpack(recent(c))}
    end
    return {newest, 0, unpack(msgs)}
  end
  skipped = 1
end
if notBefore > 0 and c >= 0 then return {newest, skipped, unpack(recent(-1))} end
local msgs = redis.call('ZRANGE', z, -limit, -1)
return {newest, skipped, unpack(msgs)}
`;

/**
 * Presence of a room: enter, leave or just count, dropping viewers not seen within the TTL.
 * KEYS: users (member = user id, score = last seen ms), names (hash id -> display name)
 * ARGV: now, ttl, op ('enter' | 'leave' | 'count'), userId, name
 * An enter also sets both keys to expire one TTL later: by then every member is stale, so a room
 * nobody touches again (a connector died with its viewers in it) does not stay in Redis.
 * Returns the online count.
 */
export const PRESENCE_LUA = `
local users, names = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local cutoff = now - tonumber(ARGV[2])
local stale = redis.call('ZRANGEBYSCORE', users, '-inf', cutoff, 'LIMIT', 0, 500)
if #stale > 0 then
  redis.call('ZREM', users, unpack(stale))
  redis.call('HDEL', names, unpack(stale))
end
local op = ARGV[3]
if op == 'enter' then
  redis.call('ZADD', users, now, ARGV[4])
  redis.call('HSET', names, ARGV[4], ARGV[5])
  redis.call('PEXPIRE', users, ARGV[2])
  redis.call('PEXPIRE', names, ARGV[2])
elseif op == 'leave' then
  redis.call('ZREM', users, ARGV[4])
  redis.call('HDEL', names, ARGV[4])
end
return redis.call('ZCARD', users)
`;

/**
 * Delete one message by id (moderation). KEYS: z, ids. ARGV: id.
 * Returns its seq, or 0 when it is not (or no longer) in the live window.
 */
export const DELETE_LUA = `
local seq = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not seq then return 0 end
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], seq, seq)
if removed == 0 then return 0 end
return tonumber(seq)
`;
