/**
 * The hosting side of a relay: starts the relay process, asks it for its
 * counters, stops it, and notices when it ends unasked.
 *
 * @module
 */
import { ChildProcess, fork } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { createServer, Server, Socket } from 'node:net'
import { join } from 'node:path'
import createDebug from 'debug'
import { ResolvedOptions } from '../options'
import type { RelayConfig, RelayStats } from './relay-types'
import type { ToHost, ToRelay } from './relay-process'

const debug = createDebug('pyvent:relay')

/** Longest wait, after the relay process ends, for the OS to report its ports free. */
const RELEASE_TIMEOUT = 1000

/**
 * V8 flags of the relay process. A young generation capped at 1 MB semi-spaces
 * (V8 grows it up to 16 MB under sustained load): the relay allocates little
 * JavaScript per message, so its young collections are rare, and every
 * received message's memory waits for one (ZeroMQ frees it when its Buffer is
 * collected). Capped, a 1,000,000-event burst raises the relay's peak RSS
 * 9-14% over a 100,000-event one instead of 21-24%, for about 5% more relay CPU
 * (`npm run bench`, row 5, alternated runs).
 */
export const RELAY_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1']

const warnedHosts = new Set<string>()

/** Why `host:port` cannot be bound now, or `undefined` when it can. Warns once when `host` is not this machine's. */
export function bindProblem(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRNOTAVAIL' && !warnedHosts.has(host)) {
        warnedHosts.add(host)
        process.emitWarning(
          `host ${host} is not an address of this machine, so this node can neither host the relay nor take it over; set server: false, or give every node that may serve an address the clients reach (a shared virtual IP).`,
          { type: 'PyventWarning', code: 'PYVENT_HOST_NOT_LOCAL' }
        )
      }
      resolve(error.code ?? error.message)
    })
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)))
  })
}

async function bothFree(host: string, port: number): Promise<boolean> {
  return (await bindProblem(host, port)) === undefined && (await bindProblem(host, port + 1)) === undefined
}

/**
 * Holds `host:port` with a plain listener (closing every connection at once)
 * while a relay process starts, so that a second node trying to host at the
 * same moment sees the port taken and does not start a process of its own.
 */
function reserve(host: string, port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer((socket) => socket.destroy())
    server.unref()
    server.once('error', () => resolve(undefined))
    server.listen({ host, port, exclusive: true }, () => resolve(server))
  })
}

/**
 * Owns the relay process of a hosting node. Emits `'lost'` if the process
 * ends without being asked to.
 * @internal
 */
export class RelayHost extends EventEmitter {
  #child: ChildProcess | undefined
  #options: ResolvedOptions | undefined
  #stopping = false

  /**
   * Tries to become the relay: resolves `true` if this node now hosts it,
   * `false` if the address is taken (by another relay or anything else).
   */
  async start(options: ResolvedOptions, hold: number): Promise<boolean> {
    // With CURVE, only a node holding the relay's secret key can serve.
    if (options.curve !== undefined && options.curve.serverSecretKey === undefined) return false
    // Cheap check first, so a client does not pay for a process when a relay is already there.
    if (!(await bothFree(options.host, options.port))) return false
    const reservation = await reserve(options.host, options.port)
    if (reservation === undefined) return false
    this.#options = options
    const env = { ...process.env }
    // The relay is plain library code: it needs none of the host's loaders or flags.
    delete env.NODE_OPTIONS
    const debugging = createDebug.enabled('pyvent:relay')
    const child = fork(join(__dirname, 'relay-process.js'), [], {
      execArgv: [...RELAY_EXEC_ARGV],
      env,
      // Its own session: a Ctrl-C meant for the host's terminal does not reach it, and it
      // holds none of the host's pipes, so `exec()` of a script that hosts it returns
      // when the script ends.
      detached: true,
      // Its debug lines (DEBUG=pyvent:relay) pass through this process's stderr.
      stdio: ['ignore', 'ignore', debugging ? 'pipe' : 'ignore', 'ipc'],
      serialization: 'json'
    })
    if (child.stderr !== null) {
      child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk))
      ;(child.stderr as Socket).unref()
    }
    child.on('error', (error) => debug('relay process error: %s', error.message))
    const exited = once(child, 'exit').then(() => undefined)
    const next = (): Promise<ToHost | undefined> => Promise.race([once(child, 'message').then(([message]) => message as ToHost), exited])
    // The port is let go only once the process is loaded and about to bind it.
    const loaded = await next()
    await new Promise((resolve) => reservation.close(resolve))
    if (loaded?.type !== 'loaded') {
      child.kill('SIGKILL')
      await exited
      return false
    }
    child.send({ type: 'start', config: { options, hold } satisfies RelayConfig } satisfies ToRelay)
    const reply = await next()
    if (reply?.type !== 'bound') {
      await exited
      return false
    }
    this.#child = child
    this.#stopping = false
    // The relay never keeps its host alive.
    this.#release(child)
    child.once('exit', (code, signal) => {
      this.#child = undefined
      if (!this.#stopping) {
        debug('relay process ended unexpectedly (%s)', signal ?? code)
        this.emit('lost')
      }
    })
    debug('relay process %d bound', child.pid)
    return true
  }

  #hold(child: ChildProcess): void {
    child.ref()
    child.channel?.ref()
  }

  #release(child: ChildProcess): void {
    child.unref()
    child.channel?.unref()
  }

  /** Whether this node hosts a running relay. */
  get running(): boolean {
    return this.#child !== undefined
  }

  /** The relay's counters, or `undefined` when not hosting. */
  async stats(): Promise<RelayStats | undefined> {
    const child = this.#child
    if (child === undefined || !child.connected) return undefined
    this.#hold(child)
    // Every listener this call adds to the child goes with the call (stats() is polled).
    const done = new AbortController()
    const { signal } = done
    try {
      const exited = once(child, 'exit', { signal }).then(() => undefined)
      child.send({ type: 'stats' } satisfies ToRelay)
      for (;;) {
        // A relay that ends meanwhile has no counters to give.
        const reply = await Promise.race([once(child, 'message', { signal }).then(([message]) => message as ToHost), exited])
        if (reply === undefined) return undefined
        if (reply.type === 'stats') return reply.stats
      }
    } finally {
      done.abort()
      if (this.#child === child) this.#release(child)
    }
  }

  /**
   * Lets the relay process go on without its host: closing the channel tells it
   * its host is gone, and it relays for the nodes still subscribed, then exits.
   */
  release(): void {
    const child = this.#child
    if (child === undefined) return
    this.#stopping = true
    this.#child = undefined
    if (child.connected) child.disconnect()
  }

  /** Stops the relay and resolves when its process has ended and its ports are free. */
  async stop(): Promise<void> {
    const child = this.#child
    if (child === undefined) return
    this.#stopping = true
    // Keep the host alive until the relay has flushed and released its ports.
    this.#hold(child)
    // 'close', not 'exit': by then the process handle and the channel are released too.
    const exited = child.exitCode === null && child.signalCode === null ? once(child, 'close') : Promise.resolve()
    if (child.connected) child.send({ type: 'stop' } satisfies ToRelay)
    else child.kill('SIGTERM')
    await exited
    this.#child = undefined
    // The process handle is released in the loop's close phase: let that pass, so
    // stop() leaves no handle behind.
    await new Promise((resolve) => setTimeout(resolve, 0))
    const { host, port } = this.#options as ResolvedOptions
    const deadline = Date.now() + RELEASE_TIMEOUT
    while (Date.now() < deadline && !(await bothFree(host, port))) {
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }
}
