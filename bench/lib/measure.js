'use strict'
// The measurement procedures: each is one run in fresh processes (see harness.js), and
// returns plain figures. run.js repeats them, takes medians and judges.
const { join } = require('node:path')
const { performance } = require('node:perf_hooks')
const { makeEvent, median, latencySummary } = require('./shared')
const { ROLES, portPair, timeScript } = require('./harness')

const sum = (values) => values.reduce((a, b) => a + b, 0)
const mean = (values) => sum(values) / values.length
const max = (values) => (values.length === 0 ? NaN : Math.max(...values))

/** The runs of one measurement and the median of each of their figures. */
function aggregate(runs) {
  const medians = {}
  for (const key of Object.keys(runs[0])) medians[key] = median(runs.map((run) => run[key]))
  return { median: medians, runs }
}

// Delivery runs: senders send `count` events, listeners count what arrives.

/**
 * One delivery run. The process that binds (raw zeromq) or hosts the relay (`host`) starts
 * first and is ready before the others start, together; then every sender sends `count`
 * events and every listener reports what it received.
 */
async function deliveryRun(spawnRole, specs, count) {
  const roles = []
  for (const spec of specs.filter((s) => s.host)) {
    roles.push(spawnRole(spec))
    await roles.at(-1).ready
  }
  const rest = specs.filter((s) => !s.host).map(spawnRole)
  await Promise.all(rest.map((role) => role.ready))
  roles.push(...rest)
  const of = (kind) => roles.filter((role) => role.kind === kind)
  const senders = await Promise.all(of('sender').map((role) => role.call('go', { count })))
  const listeners = await Promise.all(of('listener').map((role) => role.call('finish')))
  const relays = await Promise.all(of('relay').map((role) => role.call('report')))
  return summarise({ senders, listeners, relays }, count)
}

/** One run's figures: rate per listener (mean and slowest), losses, order, peak RSS and CPU per kind of process. */
function summarise({ senders, listeners, relays }, count) {
  const rates = listeners.map((report) => report.rate)
  return {
    rate: mean(rates),
    slowest: Math.min(...rates),
    lost: sum(listeners.map((report) => count - report.count)),
    disorder: sum(listeners.map((report) => report.disorder)),
    // pyvent's own count of what it lost (sequence gaps seen by the listeners), beside the true count.
    gaps: sum(listeners.map((report) => report.stats?.gaps ?? 0)),
    sendSeconds: max(senders.map((report) => report.seconds ?? NaN)),
    rssSender: max(senders.map((report) => report.rssMB)),
    rssListener: max(listeners.map((report) => report.rssMB)),
    rssRelay: max(relays.map((report) => report.rssMB)),
    cpuRelay: max(relays.map((report) => report.cpuMs))
  }
}

/** A pyvent delivery topology: the relay in its own process, in the sender's, or in the first listener's. */
async function pyventSpecs({ relayAt = 'own', listeners = 1, delivery = 'lossless', spinMicros = 0, curve }) {
  const port = await portPair()
  const node = (role, host, extra = {}) => ({ file: 'pyvent.js', role, host, config: { port, delivery, host, curve, ...extra } })
  const specs = [node('sender', relayAt === 'sender')]
  if (relayAt === 'own') specs.push(node('relay', true))
  for (let k = 0; k < listeners; k++) specs.push(node('listener', relayAt === 'listener' && k === 0, { spinMicros }))
  return specs
}

async function zmqSpecs(count) {
  const port = await portPair()
  // The Pull binds, so it goes first; the Push connects.
  return [
    { file: 'zmq.js', role: 'listener', host: true, config: { port, expect: count } },
    { file: 'zmq.js', role: 'sender', config: { port } }
  ]
}

/**
 * Sends through the IPC channel as an application that honours backpressure does: when
 * send() says the channel's write queue is long, wait until that message has been written.
 * Returns a function that sends one message and returns that wait, or null.
 */
function ipcWriter(child) {
  let sent = 0
  let written = 0
  let waiter
  const onWritten = () => {
    written++
    if (waiter !== undefined && written >= waiter.target) {
      waiter.resolve()
      waiter = undefined
    }
  }
  return (message) => {
    sent++
    if (child.send(message, onWritten)) return null
    return new Promise((resolve) => (waiter = { target: sent, resolve }))
  }
}

/** The IPC baseline: this process is the parent and sends every event to each child. */
async function ipcRun(spawnRole, listeners, count) {
  const children = Array.from({ length: listeners }, () => spawnRole({ file: 'ipc.js', role: 'listener' }))
  await Promise.all(children.map((child) => child.ready))
  const writers = children.map((child) => ipcWriter(child.process))
  for (let i = 0; i < count; i++) {
    const event = makeEvent(i)
    for (const write of writers) {
      const full = write(event)
      if (full !== null) await full
    }
  }
  const received = await Promise.all(children.map((child) => child.call('finish')))
  return summarise({ senders: [], listeners: received, relays: [] }, count)
}

// Round trips, failover, cold start.

async function zmqRoundTrip(spawnRole, { roundTrips }) {
  const port = await portPair()
  const echo = spawnRole({ file: 'zmq.js', role: 'echo', config: { port } })
  const pinger = spawnRole({ file: 'zmq.js', role: 'pinger', config: { port } })
  await Promise.all([echo.ready, pinger.ready])
  return pinger.call('go', roundTrips)
}

async function ipcRoundTrip(spawnRole, { roundTrips: { warmup, count } }) {
  const echo = spawnRole({ file: 'ipc.js', role: 'echo' })
  await echo.ready
  let answered
  echo.on('data', () => answered())
  const samples = []
  for (let k = 0; k < warmup + count; k++) {
    const start = performance.now()
    const pong = new Promise((resolve) => (answered = resolve))
    echo.process.send(makeEvent(k))
    await pong
    if (k >= warmup) samples.push(performance.now() - start)
  }
  return latencySummary(samples)
}

/** request() from one process to a responder in another, which hosts the relay. */
async function requestRoundTrip(spawnRole, { roundTrips }) {
  const port = await portPair()
  const responder = spawnRole({ file: 'pyvent.js', role: 'responder', config: { port, host: true } })
  await responder.ready
  const requester = spawnRole({ file: 'pyvent.js', role: 'requester', config: { port } })
  await requester.ready
  return requester.call('go', roundTrips)
}

/**
 * Kills the relay's process while a ticker sends an event a millisecond. The figure is the
 * time from the kill to the arrival of the first event sent after it, which only a new
 * relay can have carried (events already past the old relay may still trickle in).
 */
/**
 * One failover: a ticker sends an event every millisecond or so; then `kill` is SIGKILLed:
 * 'host', the process that started the relay (the relay process lives on), or 'relay', that
 * process and the relay process with it (a survivor must take over). Measures kill -> the
 * first event sent after the kill that arrives, and counts what was lost.
 */
async function failoverRun(spawnRole, kill = 'relay') {
  const port = await portPair()
  const relay = spawnRole({ file: 'pyvent.js', role: 'relay', config: { port } })
  await relay.ready
  const { stats } = await relay.call('report')
  // Up to 0.1.0 the relay was a thread of its host: no pid of its own.
  const relayPid = stats.relay?.pid
  // Both may serve, as the issue asks; only a node that receives notices the relay is gone.
  const listener = spawnRole({ file: 'pyvent.js', role: 'listener', config: { port, server: true, stream: true } })
  const ticker = spawnRole({ file: 'pyvent.js', role: 'ticker', config: { port, server: true } })
  await Promise.all([listener.ready, ticker.ready])
  await ticker.call('start')
  await listener.until('arrival', (arrival) => arrival.i >= 100, 10_000)
  const killedAt = performance.now()
  const killed = relay.kill()
  if (kill === 'relay' && relayPid !== undefined && relayPid !== relay.process.pid) process.kill(relayPid, 'SIGKILL')
  const { next } = await ticker.call('mark')
  const first = await listener.until('arrival', (arrival) => arrival.i >= next, 10_000)
  await killed
  if (kill === 'host' && relayPid !== undefined) {
    // The relay process outlived its host; it ends once nobody uses it, but not before this run does.
    try {
      process.kill(relayPid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  // Events numbered below that first one which never arrived went down with the old relay.
  const before = new Set(listener.log.get('arrival').filter((a) => a.i < first.i).map((a) => a.i))
  return { ms: first.at - killedAt, lost: first.i - before.size }
}

/**
 * Wall time, spawn to exit, of a script that sends one event to a listener already running,
 * beside `node -e ''` and a script that only loads zeromq: hyperfine's method, by hand.
 */
async function coldStart(spawnRole, { coldRuns }) {
  const port = await portPair()
  const hostPort = await portPair()
  const listener = spawnRole({ file: 'pyvent.js', role: 'listener', config: { port, host: true, stream: true } })
  await listener.ready
  const scripts = {
    node: () => ['-e', ''],
    zeromq: () => [join(ROLES, 'cold-zmq.js')],
    pyvent: (k) => [join(ROLES, 'cold-send.js'), String(k)],
    // Nothing on its port: the script starts the relay itself, sends, stops it and exits.
    hosting: (k) => [join(ROLES, 'cold-send.js'), String(k)]
  }
  const times = { node: [], zeromq: [], pyvent: [], hosting: [] }
  // One untimed round warms the disk cache. The scripts take turns, and the turn order
  // rotates each round: whichever runs right after a pyvent send is measurably slower.
  const names = Object.keys(scripts)
  for (let k = -1; k < coldRuns; k++) {
    for (let turn = 0; turn < names.length; turn++) {
      const name = names[(k + 1 + turn) % names.length]
      const ms = await timeScript(scripts[name](k + 1), { PYVENT_PORT: String(name === 'hosting' ? hostPort : port) })
      if (name === 'pyvent') await listener.until('arrival', (arrival) => arrival.i === k + 1, 5000)
      if (k >= 0) times[name].push(ms)
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, runs]) => [name, { median: median(runs), runs }]))
}

/**
 * A work group of `members` (each with `concurrency`) behind a relay in its own process:
 * one sender sends `count` events; the rate is events over the time from the first send
 * to the last arrival at any member.
 */
async function groupRun(spawnRole, count, { members = 3, concurrency = 1 } = {}) {
  const port = await portPair()
  const relay = spawnRole({ file: 'pyvent.js', role: 'relay', config: { port, host: true } })
  await relay.ready
  const group = Array.from({ length: members }, () => spawnRole({ file: 'pyvent.js', role: 'member', config: { port, concurrency } }))
  const sender = spawnRole({ file: 'pyvent.js', role: 'sender', config: { port } })
  await Promise.all([...group, sender].map((role) => role.ready))
  const started = Date.now()
  await sender.call('go', { count })
  // Events may still wait at the relay for room: ask until all arrived, or none came for 10 s.
  let reports = []
  let progress = { handled: -1, at: Date.now() }
  for (;;) {
    reports = await Promise.all(group.map((member) => member.call('finish')))
    const handled = sum(reports.map((report) => report.count))
    if (handled >= count) break
    if (handled > progress.handled) progress = { handled, at: Date.now() }
    else if (Date.now() - progress.at > 10_000) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const handled = sum(reports.map((report) => report.count))
  const last = Math.max(...reports.map((report) => report.last))
  return {
    rate: handled / ((last - started) / 1000),
    lost: count - handled,
    shares: reports.map((report) => report.count)
  }
}

module.exports = {
  groupRun,
  aggregate,
  deliveryRun,
  pyventSpecs,
  zmqSpecs,
  ipcRun,
  zmqRoundTrip,
  ipcRoundTrip,
  requestRoundTrip,
  failoverRun,
  coldStart
}
