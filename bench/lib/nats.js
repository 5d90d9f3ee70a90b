'use strict'
// pyvent on NATS beside the raw NATS client, in the same run, against one nats-server
// started per run on a fresh port: 1 -> 1 throughput, fan-out 1 -> 4, request round trip.
// run.js registers the row with one line (`...natsRows(...)`).
const { spawn } = require('node:child_process')
const { existsSync } = require('node:fs')
const { connect } = require('node:net')
const { portPair } = require('./harness')

const SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((path) => existsSync(path)) ?? 'nats-server'

/** Resolves once `count()` reaches `expect`, or nothing more arrived for 3 s (the rest is lost). */
async function untilCount(count, expect) {
  let last = -1
  let since = Date.now()
  while (count() < expect) {
    if (count() !== last) {
      last = count()
      since = Date.now()
    } else if (Date.now() - since > 3000) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A nats-server on a fresh port, up once it accepts a connection; `stop()` kills it. */
async function natsServer() {
  const port = await portPair()
  const child = spawn(SERVER, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const up = () => new Promise((resolve) => connect({ host: '127.0.0.1', port }).once('connect', function () { this.destroy(); resolve(true) }).once('error', () => resolve(false)))
  for (let tries = 0; !(await up()); tries++) {
    if (tries > 200) throw new Error(`nats-server did not start on ${port}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return { url: `nats://127.0.0.1:${port}`, stop: () => (child.kill('SIGKILL'), exited) }
}

/** One delivery run through a fresh server: `kind` is 'raw' or 'pyvent'. */
async function natsDelivery(spawnRole, kind, listeners, count) {
  const server = await natsServer()
  try {
    const file = `nats-${kind}.js`
    const receivers = Array.from({ length: listeners }, () => spawnRole({ file, role: 'listener', config: { url: server.url, expect: count } }))
    const sender = spawnRole({ file, role: 'sender', config: { url: server.url } })
    await Promise.all([...receivers, sender].map((role) => role.ready))
    await sender.call('go', { count })
    const reports = await Promise.all(receivers.map((role) => role.call('finish')))
    const rates = reports.map((report) => report.rate)
    return {
      rate: rates.reduce((a, b) => a + b, 0) / rates.length,
      lost: reports.reduce((sum, report) => sum + count - report.count, 0),
      disorder: reports.reduce((sum, report) => sum + report.disorder, 0)
    }
  } finally {
    await server.stop()
  }
}

async function natsRoundTrip(spawnRole, kind, roundTrips) {
  const server = await natsServer()
  try {
    const file = `nats-${kind}.js`
    const responder = spawnRole({ file, role: 'responder', config: { url: server.url } })
    await responder.ready
    const requester = spawnRole({ file, role: 'requester', config: { url: server.url } })
    await requester.ready
    return await requester.call('go', roundTrips)
  } finally {
    await server.stop()
  }
}

/**
 * The NATS row for run.js. `runs` is run.js's repetition; `helpers()` hands over its table
 * helpers when the table is drawn (they are defined after the rows).
 */
function natsRows(runs, helpers) {
  const measure = async (S) => {
    const out = {}
    for (const kind of ['raw', 'pyvent']) {
      out[kind] = {
        one: await runs(S.reps, (spawnRole) => natsDelivery(spawnRole, kind, 1, S.events)),
        four: await runs(S.reps, (spawnRole) => natsDelivery(spawnRole, kind, 4, S.events / 4)),
        rtt: await runs(S.reps, (spawnRole) => natsRoundTrip(spawnRole, kind, S.roundTrips))
      }
    }
    return out
  }
  const lines = ({ raw, pyvent }) => {
    const { line, rate, micros, spread } = helpers()
    const within = (ratio) => ratio <= 1.5
    const tput = (what, key) => {
      const p = pyvent[key].median
      const r = raw[key].median
      return [
        line('10', `raw NATS ${what}`, 'per listener', rate(r.rate), { vs: `lost ${r.lost} ${spread(raw[key])}` }),
        line('10', `pyvent on NATS ${what}`, 'per listener', rate(p.rate), {
          vs: `${(p.rate / r.rate).toFixed(2)}x raw NATS; lost ${p.lost}, ${p.disorder === 0 ? 'order held' : 'ORDER BROKEN'} ${spread(pyvent[key])}`,
          target: 'within 1.5x of raw',
          pass: within(r.rate / p.rate)
        })
      ]
    }
    const p = pyvent.rtt.median
    const r = raw.rtt.median
    return [
      ...tput('1 -> 1', 'one'),
      ...tput('1 -> 4', 'four'),
      line('10', 'raw NATS request', 'round trip p50 / p99', `${micros(r.p50)} / ${micros(r.p99)}`),
      line('10', 'pyvent request() on NATS', 'round trip p50 / p99', `${micros(p.p50)} / ${micros(p.p99)}`, {
        vs: `${(p.p50 / r.p50).toFixed(2)}x raw NATS p50`,
        target: 'within 1.5x of raw',
        pass: within(p.p50 / r.p50)
      })
    ]
  }
  return [{ id: 'nats', n: 11, title: 'NATS: pyvent beside the raw NATS client', measure, lines }]
}

module.exports = { natsRows, untilCount }
