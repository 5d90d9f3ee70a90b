'use strict'
// Raw NATS baselines (@nats-io/transport-node, no pyvent): one JSON event per NATS message,
// stringified and parsed per message as any program sending objects must.
const { performance } = require('node:perf_hooks')
const { connect } = require('@nats-io/transport-node')
const { makeEvent, latencySummary } = require('../lib/shared')
const { runRole, usage, Meter } = require('../lib/role')
const { untilCount } = require('../lib/nats')

const SUBJECT = 'bench.order-food'
const RPC = 'bench.echo'

runRole({
  async listener({ url, expect }) {
    const nc = await connect({ servers: url })
    const meter = new Meter()
    nc.subscribe(SUBJECT, { callback: (_error, msg) => meter.record(JSON.parse(msg.string()).i) })
    await nc.flush()
    return {
      async finish() {
        await untilCount(() => meter.count, expect)
        return meter.report()
      }
    }
  },

  async sender({ url }) {
    const nc = await connect({ servers: url })
    return {
      async go({ count }) {
        const start = performance.now()
        for (let i = 0; i < count; i++) {
          nc.publish(SUBJECT, JSON.stringify(makeEvent(i)))
          // nats.js has no backpressure: a round trip every 1,000 keeps its buffer bounded.
          if (i % 1000 === 999) await nc.flush()
        }
        await nc.flush()
        return { seconds: (performance.now() - start) / 1000, ...usage() }
      }
    }
  },

  async responder({ url }) {
    const nc = await connect({ servers: url })
    nc.subscribe(RPC, { callback: (_error, msg) => msg.respond(JSON.stringify(JSON.parse(msg.string()))) })
    await nc.flush()
    return {}
  },

  async requester({ url }) {
    const nc = await connect({ servers: url })
    return {
      async go({ warmup, count }) {
        const samples = []
        for (let k = 0; k < warmup + count; k++) {
          const start = performance.now()
          JSON.parse((await nc.request(RPC, JSON.stringify(makeEvent(k)), { timeout: 5000 })).string())
          if (k >= warmup) samples.push(performance.now() - start)
        }
        return { ...latencySummary(samples), ...usage() }
      }
    }
  }
})
