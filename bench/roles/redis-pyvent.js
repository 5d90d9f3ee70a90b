'use strict'
// pyvent on the Redis engine (config.url): the same roles as pyvent.js, and a durable group member.
const { performance } = require('node:perf_hooks')
const { Node } = require('pyvent')
const { makeEvent } = require('../lib/shared')
const { runRole, usage, Meter, timedRequests } = require('../lib/role')

const SIGNAL = 'order-food'
const RPC = 'echo'

async function startNode({ url }) {
  const node = new Node({ url, readyTimeout: 120_000 })
  await node.ready()
  return node
}

runRole({
  async sender(config) {
    const node = await startNode(config)
    return {
      async go({ count }) {
        const start = performance.now()
        for (let i = 0; i < count; i++) await node.send(SIGNAL, makeEvent(i))
        await node.flush()
        return { seconds: (performance.now() - start) / 1000, ...usage() }
      }
    }
  },

  async listener(config) {
    const node = await startNode(config)
    const meter = new Meter()
    let done
    node.connect(SIGNAL, (event) => {
      meter.record(event.i)
      if (meter.count === config.expect) done?.()
    })
    await node.ready()
    return {
      async finish() {
        if (meter.count < config.expect) await new Promise((resolve) => (done = resolve))
        return { ...meter.report(), stats: await node.stats() }
      }
    }
  },

  /** A durable group member taking up to `concurrency` events at a time; acknowledged as each handler returns. */
  async member(config) {
    const node = new Node({ url: config.url, readyTimeout: 120_000 })
    const meter = new Meter()
    let done
    node.connect(
      SIGNAL,
      (event) => {
        meter.record(event.i)
        if (meter.count === config.expect) done?.()
      },
      { group: 'bench', concurrency: config.concurrency, durable: { from: 'now' } }
    )
    await node.ready()
    return {
      async finish() {
        if (meter.count < config.expect) await new Promise((resolve) => (done = resolve))
        return meter.report()
      }
    }
  },

  async responder(config) {
    const node = await startNode(config)
    node.respond(RPC, (payload) => payload)
    await node.ready()
    return {}
  },

  async requester(config) {
    const node = await startNode(config)
    return { go: timedRequests(node, RPC) }
  }
})
