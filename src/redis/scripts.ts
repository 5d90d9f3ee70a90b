/**
 * The Lua scripts pyvent runs on Redis, each one atomic step, and how it runs
 * them: EVALSHA, falling back to EVAL when the server does not know the script
 * yet (a fresh or restarted server), which also loads it.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import type { RedisClient } from './load'

/** A Lua script and its SHA1. */
export interface Script {
  readonly source: string
  readonly sha: string
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * One batch of events of one signal and sender. PUBLISHes the batch to plain
 * listeners; adds each event to the signal's stream only if that stream exists
 * (a durable group made it), so senders pay nothing for storage no group needs;
 * and pushes each event to the list of every plain work group whose members
 * are still subscribed to its wake-up channel (a group nobody hears is removed).
 *
 * KEYS: event channel, stream, groups set. ARGV: head (the message up to its
 * sequence number), first sequence number, stream MAXLEN, payloads...
 */
export const SEND = script(`
local head, seq, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local count = #ARGV - 3
redis.call('PUBLISH', KEYS[1], head .. ARGV[2] .. ',"p":[' .. table.concat(ARGV, ',', 4) .. ']}')
local durable = redis.call('EXISTS', KEYS[2]) == 1
local groups = redis.call('SMEMBERS', KEYS[3])
if not durable and #groups == 0 then return 0 end
local each = {}
for i = 1, count do each[i] = head .. string.format('%d', seq + i - 1) .. ',"p":[' .. ARGV[3 + i] .. ']}' end
if durable then
  for i = 1, count do redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'm', each[i]) end
end
for _, group in ipairs(groups) do
  if redis.call('PUBLISH', 'pyvent:gw:' .. group, '') == 0 then
    redis.call('SREM', KEYS[3], group)
    redis.call('DEL', 'pyvent:gq:' .. group)
  else
    redis.call('RPUSH', 'pyvent:gq:' .. group, unpack(each))
  end
end
return 1
`)

/**
 * One request: queued on the signal's request list and a wake-up PUBLISHed to
 * its responders; when no responder heard it, taken back and 0 returned (the
 * requester answers itself "no responders").
 *
 * KEYS: request list, wake-up channel. ARGV: the request message.
 */
export const REQUEST = script(`
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('PUBLISH', KEYS[2], '') == 0 then
  redis.call('RPOP', KEYS[1])
  return 0
end
redis.call('PEXPIRE', KEYS[1], 3600000)
return 1
`)

/**
 * A durable group member takes over entries other members (or itself) left
 * unfinished for `claimAfter` ms. An entry already delivered `maxDeliveries`
 * times goes to the dead-letter stream instead, with its last error, and is
 * acknowledged. Returns `{deadLettered, {{id, fields, deliveries}, ...}, trimmed}`.
 *
 * KEYS: stream, errors hash, dead-letter stream.
 * ARGV: group, consumer, claimAfter, count, maxDeliveries, dead-letter MAXLEN.
 */
export const CLAIM = script(`
local group = ARGV[1]
local claimed = redis.call('XAUTOCLAIM', KEYS[1], group, ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out, dead = {}, 0
for _, entry in ipairs(claimed[2]) do
  local id, fields = entry[1], entry[2]
  local pending = redis.call('XPENDING', KEYS[1], group, id, id, 1)
  local deliveries = pending[1] and pending[1][4] or 1
  if not fields then
    redis.call('XACK', KEYS[1], group, id)
  elseif deliveries > tonumber(ARGV[5]) then
    local message = ''
    for i = 1, #fields, 2 do if fields[i] == 'm' then message = fields[i + 1] end end
    local err = redis.call('HGET', KEYS[2], id) or 'no member finished it within claimAfter (each one died or hung)'
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'm', message, 'id', id, 'group', group,
      'deliveries', deliveries - 1, 'error', err)
    redis.call('XACK', KEYS[1], group, id)
    redis.call('HDEL', KEYS[2], id)
    dead = dead + 1
  else
    out[#out + 1] = { id, fields, deliveries }
  end
end
return { dead, out, #(claimed[3] or {}) }
`)

/** Runs `script` with EVALSHA, or with EVAL when the server does not have it. */
export async function run(client: RedisClient, { source, sha }: Script, keys: string[], args: string[]): Promise<unknown> {
  const rest = [String(keys.length), ...keys, ...args]
  try {
    return await client.sendCommand(['EVALSHA', sha, ...rest])
  } catch (error) {
    if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error
    return client.sendCommand(['EVAL', source, ...rest])
  }
}
