'use strict'
// Raw node-redis baselines doing what pyvent does on Redis, with JSON per event as any
// program sending objects must: PUBLISH/SUBSCRIBE, a request answered by PUBLISH on the
// requester's channel, and a stream read by a consumer group (XADD, XREADGROUP, XACK).
// Commands are pipelined (node-redis sends those issued in one tick together), at most
// WINDOW in flight, as a program honouring backpressure would.
const { performance } = require('node:perf_hooks')
const { createClient } = require('redis')
const { makeEvent, latencySummary } = require('../lib/shared')
const { runRole, usage, Meter } = require('../lib/role')

const WINDOW = 1000
const CHANNEL = 'raw:order-food'
const STREAM = 'raw:stream'

async function client(url) {
  const redis = createClient({ url })
  redis.on('error', () => undefined)
  await redis.connect()
  return redis
}

/** Sends `count` commands made by `command(i)`, at most WINDOW unanswered. */
async function pipelined(count, command) {
  let pending = []
  for (let i = 0; i < count; i++) {
    pending.push(command(i))
    if (pending.length >= WINDOW) {
      await Promise.all(pending)
      pending = []
    }
  }
  await Promise.all(pending)
}

runRole({
  async publisher({ url }) {
    const redis = await client(url)
    return {
      async go({ count }) {
        const start = performance.now()
        await pipelined(count, (i) => redis.publish(CHANNEL, JSON.stringify(makeEvent(i))))
        return { seconds: (performance.now() - start) / 1000, ...usage() }
      }
    }
  },

  async subscriber({ url, expect }) {
    const redis = await client(url)
    const meter = new Meter()
    let done
    await redis.subscribe(CHANNEL, (message) => {
      meter.record(JSON.parse(message).i)
      if (meter.count === expect) done?.()
    })
    return {
      async finish() {
        if (meter.count < expect) await new Promise((resolve) => (done = resolve))
        return meter.report()
      }
    }
  },

  async responder({ url }) {
    const sub = await client(url)
    const pub = await client(url)
    await sub.subscribe('raw:requests', (message) => {
      const { reply, id, payload } = JSON.parse(message)
      void pub.publish(reply, JSON.stringify({ id, value: payload }))
    })
    return {}
  },

  async requester({ url }) {
    const sub = await client(url)
    const pub = await client(url)
    let answered
    await sub.subscribe('raw:replies', (message) => answered(JSON.parse(message)))
    return {
      async go({ warmup, count }) {
        const samples = []
        for (let k = 0; k < warmup + count; k++) {
          const start = performance.now()
          const reply = new Promise((resolve) => (answered = resolve))
          await pub.publish('raw:requests', JSON.stringify({ reply: 'raw:replies', id: k, payload: makeEvent(k) }))
          await reply
          if (k >= warmup) samples.push(performance.now() - start)
        }
        return { ...latencySummary(samples), ...usage() }
      }
    }
  },

  /** Echoes every ping back unchanged, parsed and stringified as any program handling objects must. */
  async echo({ url }) {
    const sub = await client(url)
    const pub = await client(url)
    await sub.subscribe('raw:ping', (message) => void pub.publish('raw:pong', JSON.stringify(JSON.parse(message))))
    return {}
  },

  /** Ping-pong through redis-server: PUBLISH a ping, wait for its pong, one after another. */
  async pinger({ url }) {
    const sub = await client(url)
    const pub = await client(url)
    let answered
    await sub.subscribe('raw:pong', (message) => answered(JSON.parse(message)))
    return {
      async go({ warmup, count }) {
        const samples = []
        for (let k = 0; k < warmup + count; k++) {
          const start = performance.now()
          const pong = new Promise((resolve) => (answered = resolve))
          await pub.publish('raw:ping', JSON.stringify(makeEvent(k)))
          await pong
          if (k >= warmup) samples.push(performance.now() - start)
        }
        return { ...latencySummary(samples), ...usage() }
      }
    }
  },

  async producer({ url }) {
    const redis = await client(url)
    return {
      async go({ count }) {
        const start = performance.now()
        await pipelined(count, (i) => redis.xAdd(STREAM, '*', { m: JSON.stringify(makeEvent(i)) }))
        return { seconds: (performance.now() - start) / 1000, ...usage() }
      }
    }
  },

  /** Reads with XREADGROUP COUNT `concurrency`, handles, acknowledges each batch with one XACK. */
  async consumer({ url, expect, concurrency }) {
    const redis = await client(url)
    await redis.xGroupCreate(STREAM, 'bench', '$', { MKSTREAM: true })
    const meter = new Meter()
    const reading = (async () => {
      while (meter.count < expect) {
        const reply = await redis.xReadGroup('bench', 'raw', { key: STREAM, id: '>' }, { COUNT: concurrency, BLOCK: 1000 })
        if (reply === null) continue
        const ids = []
        for (const { messages } of reply) {
          for (const { id, message } of messages) {
            meter.record(JSON.parse(message.m).i)
            ids.push(id)
          }
        }
        void redis.xAck(STREAM, 'bench', ids)
      }
    })()
    return {
      async finish() {
        await reading
        return meter.report()
      }
    }
  }
})
