/**
 * One start-to-stop life of a node: its connection to the engine, its
 * readiness, its attempts to host the relay, its flush and its end. A node
 * creates a session when it starts and drops it when it stops; a restart is a
 * new session, so nothing of a stopped life leaks into the next one.
 *
 * @module
 */
import createDebug from 'debug'
import type { EventMessage, ReplyMessage } from './codec'
import type { Connection, Engine, RelayCounters, RelayHosting, WireState } from './engine'
import { RelayUnreachableError, StoppedError, TimeoutError } from './errors'
import { addressOf, ResolvedOptions } from './options'

const debug = createDebug('pyvent:node')

/**
 * A new relay waits this long after binding before it forwards anything, so
 * that clients already waiting for a relay (after a failover, or started before
 * any relay) reconnect and resubscribe before the events they queued pass by.
 */
const RELAY_HOLD = 50

const RESOLVED = Promise.resolve()

/** What a session needs from its node. */
export interface SessionContext {
  readonly options: ResolvedOptions
  readonly nodeId: string
  readonly engine: Engine
  /** The relay the node may host (the relay engine only); it outlives sessions. */
  readonly relay: RelayHosting | undefined
  /** Sequence numbers and counters, kept across sessions. */
  readonly wire: WireState
  message(message: EventMessage | ReplyMessage): void
  error(error: Error): void
  /** How many listeners, waits, requests and responders need receiving. */
  demand(): number
  /** Makes every subscription, responder and group membership of the node on a new connection. */
  restore(connection: Connection): void
  /** The node became (`true`) or stopped being (`false`) the relay. */
  relayChanged(hosting: boolean): void
}

/** One life of a node, from start to stop. @internal */
export class Session {
  readonly #ctx: SessionContext
  /** Resolves once the session is open (relay hosted if it should be, connection made); rejects if hosting failed. */
  readonly opened: Promise<void>
  #connection: Connection | undefined
  /** The connection once a round trip proved it, until the session stops: the hot path's one test. */
  #readyConnection: Connection | undefined
  #firstReady: Promise<void> | undefined
  /** Whether a round trip ever proved the connection: only then was anything of the user's queued on it. */
  #proved = false
  /** An attempt to host the relay in progress (at open, startServer or takeover). */
  #hosting: Promise<boolean> | undefined
  /** Set when the session begins to stop: it takes no new work from then on. */
  stopping: Promise<boolean> | undefined

  constructor(ctx: SessionContext) {
    this.#ctx = ctx
    this.opened = this.#open()
  }

  async #open(): Promise<void> {
    const { options, engine, nodeId, wire } = this.#ctx
    if (options.server) await this.host()
    const connection = engine.connect(options, nodeId, wire, {
      message: (message) => this.#ctx.message(message),
      suspect: () => this.takeOver(),
      error: (error) => this.#ctx.error(error),
      demand: () => this.#ctx.demand()
    })
    this.#ctx.restore(connection)
    this.#connection = connection
    if (this.#ctx.demand() > 0) connection.startReceiving()
    debug('started (node %s, %s)', nodeId, this.#ctx.relay?.running === true ? 'relay' : engine.name)
  }

  /** Open and not stopping. */
  get live(): boolean {
    return this.#connection !== undefined && this.stopping === undefined
  }

  /** Whether a round trip proved the connection (and the session is not stopping). */
  get isReady(): boolean {
    return this.#readyConnection !== undefined
  }

  /** The connection, once ready and while live: what `send` uses without waiting. */
  get readyConnection(): Connection | undefined {
    return this.#readyConnection
  }

  /** The connection, or a StoppedError if the session ended while the caller waited. */
  get connection(): Connection {
    if (this.#connection === undefined) throw new StoppedError('The node was stopped while this call was waiting for it to start.')
    return this.#connection
  }

  /** The connection if the session is open, else `undefined`. */
  get openConnection(): Connection | undefined {
    return this.#connection
  }

  /**
   * Proves a round trip through the engine (every subscription made so far is
   * live). Rejects with {@link RelayUnreachableError} after `readyTimeout`.
   */
  async ready(): Promise<void> {
    await this.opened
    const connection = this.connection
    const { options, engine } = this.#ctx
    const start = Date.now()
    if (await connection.probe(options.readyTimeout)) {
      this.#proved = true
      if (this.live) this.#readyConnection = connection
      return
    }
    if (!this.live) throw new StoppedError('The node was stopped before it was ready.')
    const hint = await engine.diagnose(options)
    const { host, port } = addressOf(options)
    // A probe ends before readyTimeout only on an answer that waiting would not change (Redis refusing a password).
    const elapsed = Date.now() - start
    // (With a margin: a timer can fire a millisecond before Date.now() says it is due.)
    const when = elapsed + 50 < options.readyTimeout ? `as it should (given up after ${elapsed} ms)` : `within ${options.readyTimeout} ms`
    throw new RelayUnreachableError(`No ${engine.describe(options)} ${when}. ${hint}`, host, port)
  }

  /** The first readiness of this session, shared by every caller. */
  readyOnce(): Promise<void> {
    if (this.#readyConnection !== undefined) return RESOLVED
    this.#firstReady ??= this.ready().finally(() => {
      this.#firstReady = undefined
    })
    return this.#firstReady
  }

  /** Tries to host the relay, once at a time. A session that began stopping meanwhile lets it go at once. */
  host(): Promise<boolean> {
    const relay = this.#ctx.relay
    if (relay === undefined) return Promise.resolve(false)
    if (relay.running) return Promise.resolve(true)
    this.#hosting ??= relay
      .start(this.#ctx.options, RELAY_HOLD)
      .then(async (hosting) => {
        if (!hosting) return false
        // stop() promises free ports: a session stopping while the relay bound releases it.
        if (this.stopping !== undefined) {
          await relay.stop()
          return false
        }
        debug('hosting the relay on port %d', this.#ctx.options.port)
        this.#ctx.relayChanged(true)
        return true
      })
      .finally(() => {
        this.#hosting = undefined
      })
    return this.#hosting
  }

  /** The relay looks gone: if this node may serve, try to take it over. */
  takeOver(): void {
    const relay = this.#ctx.relay
    if (!this.#ctx.options.server || relay === undefined || relay.running || this.#hosting !== undefined || !this.live) return
    this.host().then(
      (hosting) => hosting && debug('took the relay over'),
      (error: unknown) => this.#ctx.error(error as Error)
    )
  }

  /** Resolves once everything queued so far is proven delivered; {@link TimeoutError} after `linger`. */
  async flush(): Promise<void> {
    const connection = this.connection
    if (!connection.unflushed) return
    const pending = connection.unflushedCount
    const { linger } = this.#ctx.options
    if (await connection.probe(linger)) return
    if (this.#connection !== connection) throw new StoppedError('The node was stopped before the relay confirmed what it sent.')
    throw new TimeoutError(
      `The ${this.#ctx.engine.name === 'relay' ? 'relay' : 'server'} did not confirm ${pending} event${pending === 1 ? '' : 's'} within linger (${linger} ms): ` +
        'it is unreachable, or a listener or work group is behind (lossless delivery waits for it; a group holds a sender back once thousands of its events wait for a member with room). Set `linger` higher to wait longer.',
      linger
    )
  }

  /**
   * The first half of a stop: proves (within `linger`) that what was queued
   * was delivered. Resolves whether it was; `waitingSends` counts sends still
   * waiting for readiness, which a session that was never ready has lost.
   */
  async drain(waitingSends: number): Promise<boolean> {
    this.#readyConnection = undefined
    const connection = this.#connection
    if (connection === undefined) return waitingSends === 0
    // Until the first readiness nothing of the user's was queued (send waits for it),
    // so only a session that was ready has anything to flush.
    const pending = this.#proved ? connection.unflushed : waitingSends > 0
    return !pending || (this.#proved && (await connection.probe(this.#ctx.options.linger)))
  }

  /**
   * The second half: closes the connection (lingering only when `flushed` and
   * the engine answered), then stops the relay if hosted, or hands it over
   * (`handOver`) so that it serves whoever still uses it. Returns the relay's
   * last counters if it was hosted.
   */
  async close(flushed: boolean, handOver: boolean): Promise<RelayCounters | undefined> {
    const connection = this.#connection
    this.#connection = undefined
    // Linger only when the engine answered: otherwise what is queued would hold the process for nothing.
    await connection?.close(this.#proved && flushed)
    await this.#hosting
    const relay = this.#ctx.relay
    if (relay?.running !== true) return undefined
    const counters = await relay.stats()
    if (handOver) relay.release()
    else await relay.stop()
    this.#ctx.relayChanged(false)
    return counters
  }
}
