'use strict'
// Raw zeromq baselines: one hop over tcp loopback, the async API awaited per message.
// Events travel as JSON text, stringified and parsed per message, as any program sending
// objects must (pyvent does the same work).
const { performance } = require('node:perf_hooks')
const { Pull, Push } = require('zeromq')
const { makeEvent, latencySummary } = require('../lib/shared')
const { runRole, usage, Meter } = require('../lib/role')

const endpoint = (port) => `tcp://127.0.0.1:${port}`

runRole({
  /** Pull, bound: counts `expect` events. */
  async listener({ port, expect }) {
    const pull = new Pull()
    await pull.bind(endpoint(port))
    const meter = new Meter()
    const received = (async () => {
      while (meter.count < expect) {
        const [frame] = await pull.receive()
        meter.record(JSON.parse(frame.toString()).i)
      }
    })()
    return {
      async finish() {
        await received
        return meter.report()
      }
    }
  },

  /** Push, connected. */
  async sender({ port }) {
    const push = new Push()
    push.connect(endpoint(port))
    return {
      async go({ count }) {
        for (let i = 0; i < count; i++) await push.send(JSON.stringify(makeEvent(i)))
        return usage()
      }
    }
  },

  /** Echoes every message back: a Push/Pull pair each way, so one hop each way. */
  async echo({ port }) {
    const pull = new Pull()
    await pull.bind(endpoint(port))
    const push = new Push()
    push.connect(endpoint(port + 1))
    void (async () => {
      for (;;) {
        const [frame] = await pull.receive()
        await push.send(JSON.stringify(JSON.parse(frame.toString())))
      }
    })()
    return {}
  },

  async pinger({ port }) {
    const pull = new Pull()
    await pull.bind(endpoint(port + 1))
    const push = new Push()
    push.connect(endpoint(port))
    return {
      async go({ warmup, count }) {
        const samples = []
        for (let k = 0; k < warmup + count; k++) {
          const start = performance.now()
          await push.send(JSON.stringify(makeEvent(k)))
          const [reply] = await pull.receive()
          JSON.parse(reply.toString())
          if (k >= warmup) samples.push(performance.now() - start)
        }
        return { ...latencySummary(samples), ...usage() }
      }
    }
  }
})
