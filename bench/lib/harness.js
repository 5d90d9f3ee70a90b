'use strict'
// The orchestrator half of the harness: role processes (bench/roles/*.js, see role.js) that
// are always killed, ports, deadlines and repetition.
const { spawn } = require('node:child_process')
const { EventEmitter } = require('node:events')
const { createServer } = require('node:net')
const { join } = require('node:path')
const { performance } = require('node:perf_hooks')

const ROLES = join(__dirname, '..', 'roles')

// The bench owns ports 45000-45999 (other suites run beside it). Every run takes a fresh
// pair (a relay uses port and port + 1), so no run can meet another's leftovers.
const FIRST_PORT = 45000
const LAST_PORT = 45999
let nextPort = FIRST_PORT

/** Resolves whether `port` can be listened on now. */
function bindable(port) {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/**
 * The base of a fresh pair of ports that can be bound. The range lies inside Linux's
 * ephemeral range, so any program's outgoing connection may hold one of them, or leave it
 * in TIME_WAIT for a minute: such pairs are skipped.
 */
async function portPair() {
  for (let tries = 0; tries < (LAST_PORT - FIRST_PORT) / 2; tries++) {
    if (nextPort + 1 > LAST_PORT) nextPort = FIRST_PORT
    const port = nextPort
    nextPort += 2
    if ((await bindable(port)) && (await bindable(port + 1))) return port
  }
  throw new Error(`no free pair of ports in ${FIRST_PORT}-${LAST_PORT}`)
}

/** Every role process alive, so that any way out of the bench kills them. */
const live = new Set()
function killAll() {
  for (const child of live) child.kill('SIGKILL')
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killAll()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}

/** Rejects with a message naming `what` if `promise` has not settled within `ms`. */
function deadline(promise, ms, what) {
  let timer
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}

/**
 * A role process. `ready` resolves once it is set up; `call` runs one of its commands;
 * its stream messages are emitted by type, stamped with the orchestrator's clock (`at`),
 * and kept in `log` so a late waiter still sees them. Messages without a type are data
 * (the IPC baseline's echoes), emitted as 'data'.
 */
class Role extends EventEmitter {
  #calls = new Map()
  #callCount = 0
  #stderr = ''
  #failure = undefined
  log = new Map()

  constructor({ file, role, config = {} }) {
    super()
    this.label = `${file.replace(/\.js$/, '')}:${role}`
    this.kind = role
    this.process = spawn(process.execPath, [join(ROLES, file), role, JSON.stringify(config)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc']
    })
    live.add(this.process)
    this.process.stderr.setEncoding('utf8').on('data', (text) => {
      this.#stderr = (this.#stderr + text).slice(-4000)
    })
    this.exited = new Promise((resolve) => this.process.once('exit', resolve))
    this.exited.then((code) => {
      live.delete(this.process)
      if (!this.killed) this.#fail(new Error(`${this.label} exited (${code}) ${this.#stderr}`))
    })
    this.ready = new Promise((resolve, reject) => {
      this.once('ready', resolve)
      this.once('failed', reject)
    })
    // A failure before anyone awaits `ready` must not become an unhandled rejection.
    this.ready.catch(() => undefined)
    this.process.on('message', (message) => this.#receive(message))
  }

  #receive(message) {
    if (message.reply !== undefined) {
      const call = this.#calls.get(message.reply)
      this.#calls.delete(message.reply)
      if (message.error !== undefined) call?.reject(new Error(`${this.label}: ${message.error}`))
      else call?.resolve(message.result)
    } else if (message.type === 'error') {
      this.#fail(new Error(`${this.label}: ${message.message}`))
    } else if (message.type !== undefined) {
      message.at = performance.now()
      if (!this.log.has(message.type)) this.log.set(message.type, [])
      this.log.get(message.type).push(message)
      this.emit(message.type, message)
    } else this.emit('data', message)
  }

  #fail(error) {
    if (this.#failure !== undefined) return
    this.#failure = error
    for (const call of this.#calls.values()) call.reject(error)
    this.#calls.clear()
    this.emit('failed', error)
  }

  /** Runs command `cmd` in the process; rejects if it fails, the process dies, or `ms` pass. */
  call(cmd, args = {}, ms = 180_000) {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    const call = ++this.#callCount
    const answered = new Promise((resolve, reject) => this.#calls.set(call, { resolve, reject }))
    this.process.send({ call, cmd, args })
    return deadline(answered, ms, `${this.label} ${cmd}`)
  }

  /** The first stream message of `type` (past or future) that satisfies `match`. */
  until(type, match, ms) {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    const seen = (this.log.get(type) ?? []).find(match)
    if (seen !== undefined) return Promise.resolve(seen)
    let cleanup
    const found = new Promise((resolve, reject) => {
      const onMessage = (message) => match(message) && resolve(message)
      this.on(type, onMessage)
      this.once('failed', reject)
      cleanup = () => {
        this.off(type, onMessage)
        this.off('failed', reject)
      }
    })
    return deadline(found, ms, `${this.label} ${type}`).finally(cleanup)
  }

  /** SIGKILL (the bench never needs a graceful stop); resolves once the process is gone. */
  kill() {
    this.killed = true
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL')
    return this.exited
  }
}

/**
 * Runs `node ...args` to its end (a short script, no IPC: the cold-start row). Resolves with
 * the wall time from spawn to exit in milliseconds; rejects if it fails or outlives `ms`.
 */
async function timeScript(args, env = {}, ms = 30_000) {
  const start = performance.now()
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
  live.add(child)
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (text) => (stderr += text))
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve([code, performance.now()])))
  try {
    const [code, end] = await deadline(exited, ms, `node ${args.join(' ')}`)
    if (code !== 0) throw new Error(`node ${args.join(' ')} exited with ${code}: ${stderr}`)
    return end - start
  } finally {
    child.kill('SIGKILL')
    live.delete(child)
  }
}

/** Runs `fn(spawn)`, then kills every process `spawn` started, whether `fn` succeeded or not. */
async function withRoles(fn) {
  const roles = []
  const spawnRole = (spec) => {
    const role = new Role(spec)
    roles.push(role)
    return role
  }
  try {
    return await fn(spawnRole)
  } finally {
    await Promise.all(roles.map((role) => role.kill()))
  }
}

/** Runs `fn` `times` times, one after another (runs share the machine, so never at once). */
async function repeat(times, fn) {
  const runs = []
  for (let k = 0; k < times; k++) runs.push(await fn(k))
  return runs
}

module.exports = { ROLES, portPair, deadline, withRoles, repeat, timeScript }
