// The marks of durable queue retention (queue-retention.ts): when each queue last had a member, in the store's clock.

/** The store's clock in ms, in a script: one clock for every node's marks and sweeps (nodes' clocks may disagree). */
const NOW = `local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
`;

/**
 * KEYS: the seen hash. ARGV: members. Marks each seen now (the store's
 * time) and returns that time; -1 when the hash is of another type (nothing
 * written: the next sweep replaces it).
 */
export const MARK = `${NOW}
for i = 1, #ARGV do
  local r = redis.pcall('HSET', KEYS[1], ARGV[i], now)
  if type(r) == 'table' and r.err then return -1 end
end
return now
`;
