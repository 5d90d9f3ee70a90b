'use strict'
// The Redis rows: pyvent on its Redis engine beside raw node-redis doing the same work, in
// the same run, each run against a fresh redis-server of its own (no persistence).
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const { mkdtempSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { createInterface } = require('node:readline')
const { portPair, deadline } = require('./harness')

/** Starts redis-server on a fresh port; resolves with its URL and a stop function. */
async function redisServer() {
  const port = await portPair()
  const dir = mkdtempSync(join(tmpdir(), 'pyvent-bench-redis-'))
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const ready = new Promise((resolve) => createInterface({ input: server.stdout }).on('line', (line) => /Ready to accept/.test(line) && resolve()))
  await deadline(ready, 10_000, 'redis-server')
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      server.kill('SIGKILL')
      await once(server, 'exit')
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Runs `procedure(spawnRole, url)` with a redis-server for its lifetime. */
function onRedis(procedure) {
  return async (spawnRole) => {
    const server = await redisServer()
    try {
      return await procedure(spawnRole, server.url)
    } finally {
      await server.stop()
    }
  }
}

/** Listener (or consumer) first, then the sender (or producer); rate measured where events arrive. */
function delivery(file, [listen, send], count, extra = {}) {
  return onRedis(async (spawnRole, url) => {
    const listener = spawnRole({ file, role: listen, config: { url, expect: count, ...extra } })
    await listener.ready
    const sender = spawnRole({ file, role: send, config: { url } })
    await sender.ready
    await sender.call('go', { count })
    const report = await listener.call('finish')
    return { rate: report.rate, lost: count - report.count, disorder: report.disorder }
  })
}

function roundTrip(file, S, [answer, ask] = ['responder', 'requester']) {
  return onRedis(async (spawnRole, url) => {
    const responder = spawnRole({ file, role: answer, config: { url } })
    await responder.ready
    const requester = spawnRole({ file, role: ask, config: { url } })
    await requester.ready
    return requester.call('go', S.roundTrips)
  })
}

/** Concurrency of the durable member, and COUNT of the raw consumer's XREADGROUP. */
const CONCURRENCY = 100

/** The rows, given run.js's helpers (a function: they are defined after its ROWS). */
function rows(helpers) {
  const row = (id, n, title, measure, lines) => ({ id, n, title, measure, lines: (data, results, S) => lines(helpers(), data, results, S) })
  const versus = (value, base, name) => (base === undefined ? '' : `${(value / base).toFixed(2)}x ${name}`)
  return [
    row('redis', 10, 'Redis: pyvent beside raw node-redis', async (S) => {
      const { runs } = helpers()
      const count = S.events / 2
      return {
        raw: await runs(S.reps, delivery('redis-raw.js', ['subscriber', 'publisher'], count)),
        pyvent: await runs(S.reps, delivery('redis-pyvent.js', ['listener', 'sender'], count)),
        rawTrip: await runs(S.reps, roundTrip('redis-raw.js', S)),
        trip: await runs(S.reps, roundTrip('redis-pyvent.js', S)),
        rawDurable: await runs(S.reps, delivery('redis-raw.js', ['consumer', 'producer'], count / 2, { concurrency: CONCURRENCY })),
        durable: await runs(S.reps, delivery('redis-pyvent.js', ['member', 'sender'], count / 2, { concurrency: CONCURRENCY }))
      }
    }, ({ line, rate, micros }, d) => [
      line('10', 'raw node-redis PUBLISH -> SUBSCRIBE', 'throughput', rate(d.raw.median.rate)),
      line('10', 'pyvent on Redis, 1 -> 1', 'throughput', rate(d.pyvent.median.rate), {
        vs: `${versus(d.pyvent.median.rate, d.raw.median.rate, 'raw')}; lost ${d.pyvent.median.lost}`,
        target: '>= 1/1.5 raw',
        pass: d.pyvent.median.rate * 1.5 >= d.raw.median.rate && d.pyvent.runs.every((run) => run.lost === 0)
      }),
      line('10', 'raw node-redis PUBLISH each way', 'round trip p50', micros(d.rawTrip.median.p50)),
      line('10', 'pyvent request() on Redis', 'round trip p50', micros(d.trip.median.p50), {
        vs: versus(d.trip.median.p50, d.rawTrip.median.p50, 'raw'),
        target: '<= 1.5x raw',
        pass: d.trip.median.p50 <= 1.5 * d.rawTrip.median.p50
      }),
      line('10', `raw XADD + XREADGROUP COUNT ${CONCURRENCY} + XACK`, 'throughput', rate(d.rawDurable.median.rate)),
      line('10', `pyvent durable group, concurrency ${CONCURRENCY}`, 'throughput', rate(d.durable.median.rate), {
        vs: `${versus(d.durable.median.rate, d.rawDurable.median.rate, 'raw')}; lost ${d.durable.median.lost}`,
        target: '>= 1/1.5 raw',
        pass: d.durable.median.rate * 1.5 >= d.rawDurable.median.rate && d.durable.runs.every((run) => run.lost === 0)
      })
    ])
  ]
}

/**
 * A baseline row: raw node-redis ping-pong through redis-server (PUBLISH each way, JSON
 * per message), shown beside the raw zeromq one-hop round trip. No target.
 */
function pingPongRow(helpers) {
  return {
    id: 'redis-pingpong',
    title: 'baseline: Redis pub/sub ping-pong',
    measure: (S) => helpers().runs(S.reps, roundTrip('redis-raw.js', S, ['echo', 'pinger'])),
    lines: ({ median: m }, results) => {
      const { line, micros } = helpers()
      const zmq = results.zmq?.roundTrip.median.p50
      return [
        line('redis', 'PUBLISH ping / PUBLISH pong', 'round trip p50 / p99', `${micros(m.p50)} / ${micros(m.p99)}`, {
          vs: zmq === undefined ? '' : `${(m.p50 / zmq).toFixed(2)}x zmq p50`
        })
      ]
    }
  }
}

module.exports = { rows, pingPongRow }
