'use strict'
// The child half of the harness. A role process is `node <roles file> <role> <json config>`;
// it talks to the orchestrator (bench/lib/harness.js) over the IPC channel only, so its
// stdout stays free and a role never prints.
const { performance } = require('node:perf_hooks')

/** Sends a message to the orchestrator: a stream message has a `type`. */
function emit(type, data = {}) {
  process.send({ type, ...data })
}

/**
 * Runs the role named by argv[2] with the config in argv[3]. A role is an async function
 * that sets itself up and resolves with its commands, once it is ready to be measured.
 * Commands arrive as {call, cmd, args} and are answered with {reply: call, result | error}.
 * Anything else on the channel is data (the IPC baseline's events), handed to `commands.data`.
 */
function runRole(roles) {
  const [name, json = '{}'] = process.argv.slice(2)
  // Never outlive the orchestrator: an orphan would keep its ports and its CPU.
  process.on('disconnect', () => process.exit(0))
  const die = (error) => process.send({ type: 'error', message: String(error?.stack ?? error) }, () => process.exit(1))
  process.on('uncaughtException', die)
  process.on('unhandledRejection', die)
  const role = roles[name]
  if (role === undefined) return die(new Error(`unknown role ${name}`))
  role(JSON.parse(json)).then((commands) => {
    process.on('message', (message) => {
      if (message.cmd === undefined) return commands.data(message)
      Promise.resolve()
        .then(() => commands[message.cmd](message.args))
        .then(
          (result) => process.send({ reply: message.call, result }),
          (error) => process.send({ reply: message.call, error: String(error?.stack ?? error) })
        )
    })
    emit('ready')
  }, die)
}

/** This process's peak memory and CPU so far: every report carries it. */
function usage() {
  const { maxRSS, userCPUTime, systemCPUTime } = process.resourceUsage()
  return { rssMB: maxRSS / 1024, cpuMs: (userCPUTime + systemCPUTime) / 1000 }
}

/**
 * Peak memory and CPU so far of another process on this machine (Linux /proc): the relay
 * process a node hosts, which `usage()` in its host does not see. NaN where /proc is missing.
 */
function usageOf(pid) {
  const { readFileSync } = require('node:fs')
  try {
    const peak = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    // utime and stime, in clock ticks (USER_HZ, 100 on Linux), after the parenthesised command name.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return { rssMB: Number(peak[1]) / 1024, cpuMs: (Number(fields[11]) + Number(fields[12])) * 10 }
  } catch {
    return { rssMB: NaN, cpuMs: NaN }
  }
}

/** Counts events where they arrive: rate between the first and the last, and order per sender. */
class Meter {
  count = 0
  first = 0
  last = 0
  previous = -1
  disorder = 0

  record(i) {
    const now = performance.now()
    if (this.count++ === 0) this.first = now
    this.last = now
    // One sender numbers its events 0, 1, 2...: a number not above the previous one is out of order.
    if (i <= this.previous) this.disorder++
    this.previous = i
  }

  report() {
    const seconds = (this.last - this.first) / 1000
    // Intervals between arrivals: the first event opens the clock.
    const rate = this.count > 1 ? (this.count - 1) / seconds : 0
    return { count: this.count, rate, seconds, disorder: this.disorder, ...usage() }
  }
}

/** Burns `micros` of CPU: a listener deliberately slower than its sender. */
function spin(micros) {
  const end = performance.now() + micros / 1000
  while (performance.now() < end);
}

/**
 * The `go` of a requester role: `warmup + count` requests to `signal` one after
 * another through `node.request`, each timed; the warm-up ones are not counted.
 */
function timedRequests(node, signal) {
  const { performance } = require('node:perf_hooks')
  const { makeEvent, latencySummary } = require('./shared')
  return async ({ warmup, count }) => {
    const samples = []
    for (let k = 0; k < warmup + count; k++) {
      const start = performance.now()
      await node.request(signal, makeEvent(k))
      if (k >= warmup) samples.push(performance.now() - start)
    }
    return { ...latencySummary(samples), ...usage() }
  }
}

module.exports = { emit, runRole, usage, usageOf, Meter, spin, timedRequests }
