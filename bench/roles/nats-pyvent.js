'use strict'
// pyvent on NATS: the same roles as the raw baselines (nats-raw.js), through a Node.
const { performance } = require('node:perf_hooks')
const { Node } = require('pyvent')
const { makeEvent } = require('../lib/shared')
const { runRole, usage, Meter, timedRequests } = require('../lib/role')
const { untilCount } = require('../lib/nats')

const SIGNAL = 'order-food'
const RPC = 'echo'

runRole({
  async listener({ url, expect }) {
    const node = new Node({ url })
    const meter = new Meter()
    node.connect(SIGNAL, (event) => meter.record(event.i))
    await node.ready()
    return {
      async finish() {
        await untilCount(() => meter.count, expect)
        return { ...meter.report(), stats: await node.stats() }
      }
    }
  },

  async sender({ url }) {
    const node = new Node({ url })
    await node.ready()
    return {
      async go({ count }) {
        const start = performance.now()
        for (let i = 0; i < count; i++) await node.send(SIGNAL, makeEvent(i))
        await node.flush()
        return { seconds: (performance.now() - start) / 1000, ...usage() }
      }
    }
  },

  async responder({ url }) {
    const node = new Node({ url })
    node.respond(RPC, (payload) => payload)
    await node.ready()
    return {}
  },

  async requester({ url }) {
    const node = new Node({ url })
    await node.ready()
    return { go: timedRequests(node, RPC) }
  }
})
