'use strict'
// Row 12: a slow listener slows only what it listens to. A sender and a fast listener of
// signal B run through a relay in its own process, alone and then beside a flooder of
// signal A whose listener takes 1 ms of sleep every 20 events (slow, without taking CPU
// from the others). B's rate beside the saturated A is judged against B's rate alone,
// measured in the same invocation. A fast listener of A shows that listeners of the
// same signal share its pace (lossless mode keeps every event for every listener).
// run.js registers the row with one line.
const { portPair } = require('./harness')

/** Listener of A sleeps 1 ms every this many events: about 20,000 events a second at most. */
const SLEEP_EVERY = 20
/**
 * Shortest window over which A's two listeners are measured. The slow one frees room in
 * its queue in steps (ZeroMQ lets a full pipe be written again once its reader has taken
 * half of it, about a second of its pace here), so a window as short as B's run can
 * fall between two steps and show A's listeners at 0.
 */
const A_WINDOW_MS = 3000

/** Resolves once the relay holds a sender (it says so in `stats().relay.held`), looking every 20 ms. */
async function untilHeld(relay, ms = 30_000) {
  const end = Date.now() + ms
  for (;;) {
    const { stats } = await relay.call('report')
    if (stats.relay.held >= 1) return stats.relay
    if (Date.now() > end) throw new Error(`the relay held no sender within ${ms} ms: the listener of A is not saturated`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** One run: B's 1 -> 1 rate, alone (`beside` false) or beside a saturated slow listener of A. */
async function isolationRun(spawnRole, count, beside) {
  const port = await portPair()
  const node = (role, extra = {}) => ({ file: 'pyvent.js', role, host: role === 'relay', config: { port, host: role === 'relay', ...extra } })
  const relay = spawnRole(node('relay'))
  await relay.ready
  const listener = spawnRole(node('listener'))
  const sender = spawnRole(node('sender'))
  const roles = [listener, sender]
  let flooder
  let fastA
  let slowA
  if (beside) {
    flooder = spawnRole(node('flooder', { signal: 'slow' }))
    fastA = spawnRole(node('listener', { signal: 'slow' }))
    slowA = spawnRole(node('listener', { signal: 'slow', sleepEvery: SLEEP_EVERY }))
    roles.push(flooder, fastA, slowA)
  }
  await Promise.all(roles.map((role) => role.ready))
  let before
  if (beside) {
    await flooder.call('start')
    await untilHeld(relay)
    before = await Promise.all([fastA.call('peek'), slowA.call('peek')])
  }
  await sender.call('go', { count })
  const b = await listener.call('finish')
  const out = { rate: b.rate, lost: count - b.count, disorder: b.disorder }
  if (beside) {
    // Whether A's sender was still held once B was done, and how fast A's two listeners went
    // from B's start over at least A_WINDOW_MS.
    const during = (await relay.call('report')).stats.relay
    const left = before[0].at + A_WINDOW_MS - (await fastA.call('peek')).at
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left))
    const after = await Promise.all([fastA.call('peek'), slowA.call('peek')])
    await flooder.call('stop')
    const pace = (k) => ((after[k].count - before[k].count) * 1000) / (after[k].at - before[k].at)
    Object.assign(out, { heldAfter: during.held, parkedAfter: during.parked, fastARate: pace(0), slowARate: pace(1) })
  }
  return out
}

/** The row, given run.js's repetition and formatting helpers. */
function slowRows(runs, helpers) {
  async function measure(S) {
    return {
      alone: await runs(S.reps, (spawnRole) => isolationRun(spawnRole, S.events, false)),
      beside: await runs(S.reps, (spawnRole) => isolationRun(spawnRole, S.events, true))
    }
  }
  const lines = ({ alone, beside }) => {
    const { line, rate, spread } = helpers()
    const a = alone.median
    const b = beside.median
    const ratio = b.rate / a.rate
    const saturated = beside.runs.every((run) => run.heldAfter >= 1)
    return [
      line('12', 'B alone, relay in 3rd process', 'throughput', rate(a.rate), { vs: `lost ${a.lost} ${spread(alone)}` }),
      line('12', 'B beside a saturated slow listener of A', 'throughput', rate(b.rate), {
        vs: `${ratio.toFixed(2)}x B alone; lost ${b.lost}; A's sender ${saturated ? 'held throughout' : 'NOT HELD in every run'} ${spread(beside)}`,
        target: '>= 0.8x B alone, lost 0',
        pass: ratio >= 0.8 && beside.runs.every((run) => run.lost === 0 && run.disorder === 0) && saturated
      }),
      line('12', 'a fast listener of A, beside the slow one', `throughput over ${A_WINDOW_MS / 1000} s from B's start`, rate(b.fastARate), {
        vs: `A's slow listener ${rate(b.slowARate)} (1 ms of sleep every ${SLEEP_EVERY} events: at most ${SLEEP_EVERY}k ev/s); lossless keeps every event for both, so they share its pace`
      })
    ]
  }
  return [{ id: 'isolation', n: 12, title: 'a slow listener slows only what it listens to', measure, lines }]
}

module.exports = { slowRows }
