#!/usr/bin/env node
'use strict'
// `npm run bench`: pyvent beside raw zeromq and child_process IPC, in one invocation on one
// machine. Every run uses fresh processes and fresh ports; every figure is the median of the
// runs, and pyvent is quoted as a ratio to the baselines measured in the same invocation.
// Prints one table on stdout (progress goes to stderr) and writes every run to
// bench/results/<timestamp>.json.
//
//   node bench/run.js [--quick] [--only <row>]
//
// --quick: fewer events and one repetition, a smoke run.
// --only:  one row, by id or number (see ROWS); its ratios need the baseline rows, so they
//          read n/a when those did not run.
const { mkdirSync, writeFileSync } = require('node:fs')
const os = require('node:os')
const { join } = require('node:path')
const { performance } = require('node:perf_hooks')
const { parseArgs } = require('node:util')
const { makeEvent, median, latencySummary } = require('./lib/shared')
const { ROLES, portPair, withRoles, repeat, timeScript } = require('./lib/harness')

const FULL = {
  reps: 3,
  events: 200_000,
  roundTrips: { warmup: 1000, count: 5000 },
  bursts: [100_000, 1_000_000],
  // Extra work per event that makes the burst listener slower than its sender.
  spinMicros: 5,
  failoverRuns: 5,
  coldRuns: 7
}
const QUICK = { ...FULL, reps: 1, events: 20_000, roundTrips: { warmup: 200, count: 1000 }, bursts: [10_000, 100_000], failoverRuns: 1, coldRuns: 1 }

const sum = (values) => values.reduce((a, b) => a + b, 0)
const mean = (values) => sum(values) / values.length
const max = (values) => (values.length === 0 ? NaN : Math.max(...values))

/** The runs of one measurement and the median of each of their figures. */
function aggregate(runs) {
  const medians = {}
  for (const key of Object.keys(runs[0])) medians[key] = median(runs.map((run) => run[key]))
  return { median: medians, runs }
}

// ---------------------------------------------------------------------------------------
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
  const all = [...senders, ...listeners, ...relays]
  return {
    rate: mean(rates),
    slowest: Math.min(...rates),
    lost: sum(listeners.map((report) => count - report.count)),
    disorder: sum(listeners.map((report) => report.disorder)),
    gaps: sum(listeners.map((report) => report.stats?.gaps ?? 0)),
    // Whichever process hosts the relay reports its counters.
    dropped: sum(all.map((report) => report.stats?.relay?.dropped ?? 0)),
    sendSeconds: max(senders.map((report) => report.seconds ?? NaN)),
    rssSender: max(senders.map((report) => report.rssMB)),
    rssListener: max(listeners.map((report) => report.rssMB)),
    rssRelay: max(relays.map((report) => report.rssMB)),
    cpuRelay: max(relays.map((report) => report.cpuMs))
  }
}

/** A pyvent delivery topology: the relay in its own process, in the sender's, or in the first listener's. */
function pyventSpecs({ relayAt = 'own', listeners = 1, delivery = 'lossless', spinMicros = 0 }) {
  const port = portPair()
  const node = (role, host, extra = {}) => ({ file: 'pyvent.js', role, host, config: { port, delivery, host, ...extra } })
  const specs = [node('sender', relayAt === 'sender')]
  if (relayAt === 'own') specs.push(node('relay', true))
  for (let k = 0; k < listeners; k++) specs.push(node('listener', relayAt === 'listener' && k === 0, { spinMicros }))
  return specs
}

function zmqSpecs(count) {
  const port = portPair()
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

// ---------------------------------------------------------------------------------------
// Round trips, failover, cold start.

async function zmqRoundTrip(spawnRole, { roundTrips }) {
  const port = portPair()
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
  const port = portPair()
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
async function failoverRun(spawnRole) {
  const port = portPair()
  const relay = spawnRole({ file: 'pyvent.js', role: 'relay', config: { port } })
  await relay.ready
  // Both may serve, as the issue asks; only a node that receives notices the relay is gone.
  const listener = spawnRole({ file: 'pyvent.js', role: 'listener', config: { port, server: true, stream: true } })
  const ticker = spawnRole({ file: 'pyvent.js', role: 'ticker', config: { port, server: true } })
  await Promise.all([listener.ready, ticker.ready])
  await ticker.call('start')
  await listener.until('arrival', (arrival) => arrival.i >= 100, 10_000)
  const killedAt = performance.now()
  const killed = relay.kill()
  const { next } = await ticker.call('mark')
  const first = await listener.until('arrival', (arrival) => arrival.i >= next, 10_000)
  await killed
  const before = new Set(listener.log.get('arrival').filter((a) => a.i < first.i).map((a) => a.i))
  return { ms: first.at - killedAt, lost: first.i - before.size }
}

/**
 * Wall time, spawn to exit, of a script that sends one event to a listener already running,
 * beside `node -e ''` and a script that only loads zeromq: hyperfine's method, by hand.
 */
async function coldStart(spawnRole, { coldRuns }) {
  const port = portPair()
  const listener = spawnRole({ file: 'pyvent.js', role: 'listener', config: { port, host: true, stream: true } })
  await listener.ready
  const scripts = {
    node: () => ['-e', ''],
    zeromq: () => [join(ROLES, 'cold-zmq.js')],
    pyvent: (k) => [join(ROLES, 'cold-send.js'), String(k)]
  }
  const times = { node: [], zeromq: [], pyvent: [] }
  // One untimed round warms the disk cache; the scripts take turns so drift hits them alike.
  for (let k = -1; k < coldRuns; k++) {
    for (const [name, args] of Object.entries(scripts)) {
      const ms = await timeScript(args(k + 1), { PYVENT_PORT: String(port) })
      if (name === 'pyvent') await listener.until('arrival', (arrival) => arrival.i === k + 1, 5000)
      if (k >= 0) times[name].push(ms)
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, runs]) => [name, { median: median(runs), runs }]))
}

// ---------------------------------------------------------------------------------------
// Rows: each measures (fresh processes per run), then says what its figures mean.

const MODES = ['lossless', 'drop']

/** Every delivery mode of a pyvent topology, `reps` runs each. */
async function pyventModes(S, topology, count = S.events) {
  const byMode = {}
  for (const delivery of MODES) {
    byMode[delivery] = aggregate(
      await repeat(S.reps, () => withRoles((spawnRole) => deliveryRun(spawnRole, pyventSpecs({ ...topology, delivery }), count)))
    )
  }
  return byMode
}

const ROWS = [
  {
    id: 'zmq',
    title: 'baseline: raw zeromq',
    async measure(S) {
      return {
        throughput: aggregate(await repeat(S.reps, () => withRoles((spawnRole) => deliveryRun(spawnRole, zmqSpecs(S.events), S.events)))),
        roundTrip: aggregate(await repeat(S.reps, () => withRoles((spawnRole) => zmqRoundTrip(spawnRole, S))))
      }
    },
    lines: ({ throughput, roundTrip }) => [
      line('zmq', 'push -> pull, 1 hop', 'throughput', rate(throughput.median.rate)),
      line('zmq', 'push/pull each way', 'round trip p50 / p99', latency(roundTrip.median))
    ]
  },
  {
    id: 'ipc',
    title: 'baseline: child_process IPC',
    async measure(S) {
      const run = (listeners) => withRoles((spawnRole) => ipcRun(spawnRole, listeners, S.events))
      return {
        throughput: aggregate(await repeat(S.reps, () => run(1))),
        fanout: aggregate(await repeat(S.reps, () => run(4))),
        roundTrip: aggregate(await repeat(S.reps, () => withRoles((spawnRole) => ipcRoundTrip(spawnRole, S))))
      }
    },
    lines: ({ throughput, fanout, roundTrip }) => [
      line('ipc', 'parent -> child', 'throughput', rate(throughput.median.rate)),
      line('ipc', 'parent -> 4 children', 'per listener', rate(fanout.median.rate)),
      line('ipc', 'parent <-> child', 'round trip p50 / p99', latency(roundTrip.median))
    ]
  },
  {
    id: 'throughput',
    n: 1,
    title: '1 -> 1, relay in a third process',
    measure: (S) => pyventModes(S, { relayAt: 'own' }),
    lines: (data, results) => throughputLines('1', 'relay in 3rd process', data, results)
  },
  {
    id: 'hosted',
    n: 2,
    title: '1 -> 1, relay in the sender / the listener',
    async measure(S) {
      return { sender: await pyventModes(S, { relayAt: 'sender' }), listener: await pyventModes(S, { relayAt: 'listener' }) }
    },
    lines: (data, results) => [
      ...throughputLines('2', 'relay in sender', data.sender, results),
      ...throughputLines('2', 'relay in listener', data.listener, results)
    ]
  },
  {
    id: 'fanout',
    n: 3,
    title: '1 -> 4 listeners, relay in a third process',
    measure: (S) => pyventModes(S, { relayAt: 'own', listeners: 4 }),
    lines: (data, results) =>
      MODES.flatMap((mode) => {
        const { median: m } = data[mode]
        const ipc = results.ipc?.fanout.median.rate
        return [
          line('3', `fan-out x4, ${mode}`, 'per listener', rate(m.rate), ratios(m.rate, { ipc }), '>= 3x ipc', judge(ipc, () => m.rate >= 3 * ipc)),
          lostLine('3', mode, data[mode])
        ]
      })
  },
  {
    id: 'request',
    n: 4,
    title: 'request() round trip',
    measure: async (S) => aggregate(await repeat(S.reps, () => withRoles((spawnRole) => requestRoundTrip(spawnRole, S)))),
    lines: ({ median: m }, results) => {
      const zmq = results.zmq?.roundTrip.median.p50
      return [
        line('4', 'request(), 2 processes', 'round trip p50', micros(m.p50), ratios(m.p50, { zmq, ipc: results.ipc?.roundTrip.median.p50 }), '<= 1x zmq p50', judge(zmq, () => m.p50 <= zmq)),
        line('4', '', 'round trip p99', micros(m.p99), `${(m.p99 / m.p50).toFixed(1)}x its p50`, '< 3x p50', m.p99 < 3 * m.p50)
      ]
    }
  },
  {
    id: 'burst',
    n: 5,
    title: 'burst to a slow listener',
    async measure(S) {
      const bySize = {}
      for (const size of S.bursts) bySize[size] = await pyventModes(S, { relayAt: 'own', spinMicros: S.spinMicros }, size)
      return bySize
    },
    lines: (data, _results, S) => {
      const [small, large] = S.bursts
      return MODES.flatMap((mode) => {
        const rows = S.bursts.map((size) => {
          const { median: m, runs } = data[size][mode]
          const order = runs.every((run) => run.disorder === 0) ? 'order held' : 'ORDER BROKEN'
          const lost = Math.max(...runs.map((run) => run.lost))
          return line('5', `burst ${count(size)}, ${mode}`, 'peak RSS send/relay/listen', `${mb(m.rssSender)} / ${mb(m.rssRelay)} / ${mb(m.rssListener)} MB`, `lost ${lost}, ${order}`, mode === 'lossless' ? 'lost 0, order held' : 'order held', runs.every((run) => run.disorder === 0) && (mode !== 'lossless' || lost === 0))
        })
        const growth = ['rssSender', 'rssRelay', 'rssListener'].map((key) => data[large][mode].median[key] / data[small][mode].median[key] - 1)
        const percent = growth.map((g) => `${g >= 0 ? '+' : ''}${(g * 100).toFixed(0)}%`).join(' / ')
        rows.push(line('5', `burst ${count(small)} -> ${count(large)}, ${mode}`, 'RSS growth send/relay/listen', percent, '', '<= 20% each', growth.every((g) => Math.abs(g) <= 0.2)))
        return rows
      })
    }
  },
  {
    id: 'failover',
    n: 6,
    title: 'relay failover (SIGKILL)',
    measure: async (S) => aggregate(await repeat(S.failoverRuns, () => withRoles(failoverRun))),
    lines: ({ median: m, runs }) => [
      line('6', `relay SIGKILL, ${runs.length} runs`, 'kill -> first new event', `${m.ms.toFixed(0)} ms`, `events lost ${m.lost}`, '< 500 ms', m.ms < 500)
    ]
  },
  {
    id: 'cold',
    n: 7,
    title: 'cold start of a send-only script',
    measure: (S) => withRoles((spawnRole) => coldStart(spawnRole, S)),
    lines: ({ node, zeromq, pyvent }) => [
      line('7', "node -e ''", 'spawn -> exit', `${node.median.toFixed(0)} ms`),
      line('7', "require('zeromq')", 'spawn -> exit', `${zeromq.median.toFixed(0)} ms`),
      line('7', 'send one event', 'spawn -> exit, delivered', `${pyvent.median.toFixed(0)} ms`, `+${(pyvent.median - zeromq.median).toFixed(0)} ms vs zeromq, +${(pyvent.median - node.median).toFixed(0)} ms vs node`, '<= zeromq + 150 ms', pyvent.median - zeromq.median <= 150)
    ]
  }
]

// ---------------------------------------------------------------------------------------
// The table.

function line(row, what, figure, value, vs = '', target = '', pass = null) {
  return { row, case: what, figure, value, vs, target, pass: pass === null ? '' : pass === 'n/a' ? 'n/a' : pass ? 'pass' : 'FAIL' }
}

/** A verdict that needs a baseline: n/a when the baseline row did not run. */
function judge(baseline, verdict) {
  return baseline === undefined ? 'n/a' : verdict()
}

/** `value` as a multiple of each baseline that ran. */
function ratios(value, baselines) {
  return Object.entries(baselines)
    .filter(([, base]) => base !== undefined)
    .map(([name, base]) => `${(value / base).toFixed(2)}x ${name}`)
    .join(', ')
}

function throughputLines(row, where, data, results) {
  const ipc = results.ipc?.throughput.median.rate
  const zmq = results.zmq?.throughput.median.rate
  return MODES.flatMap((mode) => {
    const { median: m } = data[mode]
    return [
      line(row, `${where}, ${mode}`, 'throughput', rate(m.rate), ratios(m.rate, { ipc, zmq }), '>= 3x ipc', judge(ipc, () => m.rate >= 3 * ipc)),
      lostLine(row, mode, data[mode])
    ]
  })
}

/** Losses of the worst run: none allowed when lossless; drop mode reports what its relay dropped. */
function lostLine(row, mode, { runs }) {
  const lost = Math.max(...runs.map((run) => run.lost))
  const dropped = Math.max(...runs.map((run) => run.dropped))
  const order = runs.every((run) => run.disorder === 0) ? 'order held' : 'ORDER BROKEN'
  const detail = `relay dropped ${dropped} msgs, ${order}`
  if (mode === 'lossless') return line(row, '', 'lost (worst run)', String(lost), detail, '0', lost === 0)
  return line(row, '', 'lost (worst run)', String(lost), detail)
}

const rate = (perSecond) => `${(perSecond / 1000).toFixed(1)}k ev/s`
const micros = (us) => `${us.toFixed(0)} us`
const latency = ({ p50, p99 }) => `${micros(p50)} / ${micros(p99)}`
const mb = (value) => (Number.isNaN(value) ? '-' : value.toFixed(0))
const count = (n) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`)

function render(lines, header) {
  const columns = ['row', 'case', 'figure', 'value', 'vs', 'target', 'pass']
  const titles = { row: '#', case: 'case', figure: 'figure', value: 'median', vs: 'vs baselines / detail', target: 'target', pass: 'pass' }
  const widths = columns.map((c) => Math.max(titles[c].length, ...lines.map((l) => l[c].length)))
  const format = (cells) => columns.map((c, k) => cells[c].padEnd(widths[k])).join('  ').trimEnd()
  return [header, format(titles), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(format)].join('\n')
}

// ---------------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } })
  const S = values.quick ? QUICK : FULL
  const rows = values.only === undefined ? ROWS : ROWS.filter((row) => row.id === values.only || String(row.n) === values.only)
  if (rows.length === 0) throw new Error(`--only ${values.only}: no such row (${ROWS.map((row) => row.n ?? row.id).join(', ')})`)

  const results = {}
  const errors = {}
  const started = new Date()
  for (const row of rows) {
    process.stderr.write(`[${row.n ?? 'base'}] ${row.id}: ${row.title} ... `)
    const t0 = performance.now()
    try {
      results[row.id] = await row.measure(S)
      process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
    } catch (error) {
      errors[row.id] = String(error.stack ?? error)
      process.stderr.write(`FAILED: ${error.message}\n`)
    }
  }

  const lines = rows.flatMap((row) =>
    errors[row.id] !== undefined
      ? [line(String(row.n ?? row.id), row.title, 'error', 'ERROR', errors[row.id].split('\n')[0].slice(0, 100))]
      : row.lines(results[row.id], results, S)
  )
  const cpus = os.cpus()
  const header = `pyvent bench ${started.toISOString()}: node ${process.version}, ${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, median of ${S.reps} runs${values.quick ? ' (quick)' : ''}; ${S.events} events per throughput run, event ${JSON.stringify(makeEvent(123))}`
  console.log(render(lines, header))

  const dir = join(__dirname, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${started.toISOString().replace(/[:.]/g, '-')}.json`)
  const meta = { date: started.toISOString(), node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: cpus.length, cpuModel: cpus[0]?.model, loadavg: os.loadavg(), seconds: (Date.now() - started.getTime()) / 1000 }
  writeFileSync(file, JSON.stringify({ meta, settings: S, quick: values.quick, results, errors, table: lines }, null, 2) + '\n')
  process.stderr.write(`results: ${file}\n`)
  if (Object.keys(errors).length > 0) process.exitCode = 1
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
