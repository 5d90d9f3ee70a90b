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
  if (beside) {
    flooder = spawnRole(node('flooder', { signal: 'slow' }))
    fastA = spawnRole(node('listener', { signal: 'slow' }))
    roles.push(flooder, fastA, spawnRole(node('listener', { signal: 'slow', sleepEvery: SLEEP_EVERY })))
  }
  await Promise.all(roles.map((role) => role.ready))
  let before
  if (beside) {
    await flooder.call('start')
    await untilHeld(relay)
    before = await fastA.call('peek')
  }
  await sender.call('go', { count })
  const b = await listener.call('finish')
  const out = { rate: b.rate, lost: count - b.count, disorder: b.disorder }
  if (beside) {
    // While B ran: how fast A's fast listener went, and whether A's sender was still held at the end.
    const after = await fastA.call('peek')
    const during = (await relay.call('report')).stats.relay
    await flooder.call('stop')
    Object.assign(out, { heldAfter: during.held, parkedAfter: during.parked, fastARate: ((after.count - before.count) * 1000) / (after.at - before.at) })
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
      line('12', 'a fast listener of A, beside the slow one', 'throughput while B ran', rate(b.fastARate), {
        vs: `shares the pace of A's slow listener (1 ms of sleep every ${SLEEP_EVERY} events: about ${SLEEP_EVERY}k ev/s); lossless keeps every event for both`
      })
    ]
  }
  return [{ id: 'isolation', n: 12, title: 'a slow listener slows only what it listens to', measure, lines }]
}

module.exports = { slowRows }
