'use strict'
// pyvent roles. Which process hosts the relay is the orchestrator's choice, through `host`.
const { performance } = require('node:perf_hooks')
const { Node } = require('pyvent')
const { makeEvent } = require('../lib/shared')
const { emit, runRole, usage, usageOf, Meter, spin, timedRequests } = require('../lib/role')

const SIGNAL = 'order-food'
const RPC = 'echo'

/**
 * `host`: start the relay here before anything else, and fail rather than quietly become a
 * client. `server`: may take the relay over later (failover). `delivery` matters where the
 * relay runs, but every node gets it so any of them could.
 */
async function startNode({ port, host = false, server = host, delivery = 'lossless', curve }) {
  // ready() doubles as the flush barrier at the end of a run, and behind a slow lossless
  // listener its probe may wait longer than the default 5 s: that is backlog, not failure.
  const node = new Node({ port, server, delivery, curve, readyTimeout: 120_000 })
  if (host && !(await node.startServer())) throw new Error(`could not host the relay on port ${port}`)
  return node
}

/** Every report carries the node's counters (the relay's too, when hosted here) and resources. */
async function report(node, extra = {}) {
  return { ...extra, stats: await node.stats(), ...usage() }
}

runRole({
  /**
   * Hosts the relay, which runs in a process of its own: its report's memory and CPU are
   * that process's (the host's own, an idle node's, are kept as `host`).
   */
  async relay(config) {
    const node = await startNode({ ...config, host: true })
    return {
      async report() {
        const own = await report(node)
        const pid = own.stats.relay?.pid
        return pid === undefined || pid === process.pid ? own : { ...own, ...usageOf(pid), host: usage() }
      }
    }
  },

  async sender(config) {
    const node = await startNode(config)
    await node.ready()
    return {
      async go({ count }) {
        const signal = config.signal ?? SIGNAL
        const start = performance.now()
        // Awaiting every send is how an application honours pyvent's backpressure.
        for (let i = 0; i < count; i++) await node.send(signal, makeEvent(i))
        // The probe queued behind the last event comes back once the relay has forwarded them all.
        await node.ready()
        return report(node, { seconds: (performance.now() - start) / 1000 })
      }
    }
  },

  /** Sends on `signal` as fast as the relay lets it, from `start` until `stop` (the slow-listener row). */
  async flooder(config) {
    const node = await startNode(config)
    await node.ready()
    let flooding = false
    let sent = 0
    return {
      start() {
        flooding = true
        void (async () => {
          while (flooding) await node.send(config.signal, makeEvent(sent++))
        })()
      },
      stop() {
        flooding = false
        return { sent }
      }
    }
  },

  /** The failover sender: an event every millisecond or so, whatever happens to the relay. */
  async ticker(config) {
    const node = await startNode(config)
    await node.ready()
    let next = 0
    return {
      start() {
        setInterval(() => void node.send(SIGNAL, makeEvent(next++)), 1)
      },
      // Every event numbered from `next` on leaves after this call, so after the relay died.
      mark: () => ({ next })
    }
  },

  /**
   * `spinMicros` makes it slower than its sender by burning CPU; `sleepEvery` by sleeping 1 ms
   * every that many events, without taking CPU from the others (the slow-listener row);
   * `stream` reports every arrival (failover, cold start).
   */
  async listener(config) {
    const { spinMicros = 0, sleepEvery = 0, stream = false, signal = SIGNAL } = config
    const node = await startNode(config)
    const meter = new Meter()
    const sleeper = new Int32Array(new SharedArrayBuffer(4))
    node.connect(signal, (event) => {
      meter.record(event.i)
      if (spinMicros > 0) spin(spinMicros)
      if (sleepEvery > 0 && meter.count % sleepEvery === 0) Atomics.wait(sleeper, 0, 0, 1)
      if (stream) emit('arrival', { i: event.i })
    })
    await node.ready()
    return {
      /** What arrived so far, and when (the orchestrator's rate over a window of its own). */
      peek: () => ({ count: meter.count, at: performance.now() }),
      // A probe through the relay arrives here behind every event the relay forwarded here
      // (or dropped), so once it is back nothing more will come: count what did.
      async finish() {
        await node.ready()
        return report(node, meter.report())
      }
    }
  },

  /** A work-group member: counts what it is handed, and when the last one came. */
  async member(config) {
    const { group = 'bench', concurrency = 1 } = config
    const node = await startNode(config)
    let count = 0
    let last = 0
    node.connect(
      SIGNAL,
      () => {
        count++
        last = Date.now()
      },
      { group, concurrency }
    )
    await node.ready()
    return {
      async finish() {
        await node.ready()
        return { count, last, ...usage() }
      }
    }
  },

  async responder(config) {
    const node = await startNode(config)
    node.respond(RPC, (payload) => payload)
    await node.ready()
    return { report: () => report(node) }
  },

  async requester(config) {
    const node = await startNode(config)
    await node.ready()
    return { go: timedRequests(node, RPC) }
  }
})
