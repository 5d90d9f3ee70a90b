/**
 * One connection to Redis, made on first use and made again when needed. The
 * connection keeps the process alive only while {@link LinkHooks.wanted} says
 * so (a script that only sends must exit by itself), and it stops trying to
 * reconnect once nothing wants it, so an unreachable server does not hold an
 * idle process either; the next use makes a new connection.
 *
 * A connection that was ready and broke is never reconnected by node-redis:
 * the link gives that client up and makes a new one. node-redis writes a
 * command one turn after it was sent, to whatever socket it has then; a
 * command sent just before a break could go into the dead socket after the
 * break was handled, wait there for a reply, and take the first reply of the
 * next connection (the handshake's "OK"), every later reply then one behind.
 * Given up, the client rejects everything it still holds, written or not, and
 * the sender sends it again on the new client.
 *
 * @module
 */
import createDebug from 'debug'
import type { ClientOptions, RedisClient } from './load'
import { within } from '../within'

const debug = createDebug('pyvent:redis:link')

/** Reconnect delays grow from this, doubling, up to {@link MAX_RETRY}. */
const FIRST_RETRY = 20
const MAX_RETRY = 500
/** How long one attempt to connect may take. */
const CONNECT_TIMEOUT = 5000

/** Refusals that waiting does not change: credentials, permissions, a database the server does not have, protected mode. */
const LASTING_REFUSAL = /^(NOAUTH|WRONGPASS|NOPERM|DENIED)\b|DB index/

/** The last reason each URL's server refused a new connection (a wrong password), for the diagnosis. */
const refusals = new Map<string, string>()

/** Why the server at `url` last refused a connection of this process, if it did and none succeeded since. */
export function lastRefusal(url: string): string | undefined {
  return refusals.get(url)
}

/** What a link reports to its connection. */
export interface LinkHooks {
  /** Whether the connection is needed now (to keep reconnecting, and to keep the process alive). */
  wanted(): boolean
  /** A ready connection broke. */
  lost(cause: Error): void
  /** A connection (the first or a new one) is ready. */
  ready(): void
  /** The server refused a new connection for good (a wrong password, a database it does not have): see {@link lastRefusal}. */
  refused?(): void
  /** A new client was made (commands sent now go out before anything queued on it). */
  created?(client: RedisClient): void
  /**
   * A new client is ready, for the first and only time (it is not reconnected),
   * before {@link Link.whenReady} resolves. Subscriptions are made here, never
   * on a client still connecting: node-redis takes a client whose connection
   * attempt failed out of pub/sub mode while its SUBSCRIBE is still queued, and
   * the first message it then receives breaks its reply parser for good.
   */
  opened?(client: RedisClient): void
}

/** A lazily made, self-healing node-redis client. */
export class Link {
  readonly #make: (options: ClientOptions) => RedisClient
  readonly #options: Omit<ClientOptions, 'socket'>
  readonly #hooks: LinkHooks
  #client: RedisClient | undefined
  #referenced = true
  #readyWaiters: (() => void)[] = []
  #closed = false

  constructor(make: (options: ClientOptions) => RedisClient, options: Omit<ClientOptions, 'socket'>, hooks: LinkHooks) {
    this.#make = make
    this.#options = options
    this.#hooks = hooks
  }

  /**
   * The client, made (and connecting) if there is none. Throws once the link is
   * closed: a late command (a claim or a group set-up still running) must not
   * open a connection that would keep the process alive after stop().
   */
  get client(): RedisClient {
    if (this.#client !== undefined) return this.#client
    if (this.#closed) throw new Error('pyvent closed this Redis connection')
    let client: RedisClient | undefined
    let wasReady = false
    /** Whether this client was ever ready: if so, it is not reconnected (see the module's comment). */
    let used = false
    client = this.#make({
      ...this.#options,
      socket: {
        connectTimeout: CONNECT_TIMEOUT,
        reconnectStrategy: (retries, cause) => {
          if (this.#closed || !this.#hooks.wanted()) {
            // Nobody needs it: give up, and let the next use make a new one.
            if (this.#client === client) this.#client = undefined
            debug('stops reconnecting (%s): nothing needs the connection', cause.message)
            return new Error('pyvent does not need this connection now')
          }
          if (used) {
            // A ready connection broke: a new client, with nothing written into the dead socket.
            if (this.#client === client) this.#client = undefined
            debug('connection broke (%s): a new one is made', cause.message)
            setImmediate(this.#renew)
            return new Error('pyvent makes a new connection')
          }
          return Math.min(FIRST_RETRY * 2 ** retries, MAX_RETRY)
        }
      }
    })
    client.on('error', (error) => {
      if (wasReady && !this.#closed) {
        wasReady = false
        this.#hooks.lost(error)
        return
      }
      debug('%s', error.message)
      // A reply from the server (not a socket failure): it is there, but refuses this client.
      if (error.constructor.name.endsWith('Error') && /^[A-Z]+ /.test(error.message) && !/^LOADING /.test(error.message)) {
        refusals.set(this.#options.url, error.message)
        // Only what waiting does not change (not "max number of clients reached", say).
        if (LASTING_REFUSAL.test(error.message)) this.#hooks.refused?.()
      }
    })
    client.on('ready', () => {
      wasReady = true
      if (!used && this.#client === client && !this.#closed) this.#hooks.opened?.(client)
      used = true
      refusals.delete(this.#options.url)
      for (const resolve of this.#readyWaiters) resolve()
      this.#readyWaiters = []
      if (!this.#closed) this.#hooks.ready()
    })
    if (!this.#referenced) client.unref()
    this.#client = client
    client.connect().catch((error: Error) => {
      if (this.#client === client) this.#client = undefined
      debug('gave up connecting: %s', error.message)
    })
    this.#hooks.created?.(client)
    return client
  }

  /** Makes a new client after a ready one broke, if the connection is still needed (else the next use makes it). */
  readonly #renew = (): void => {
    if (this.#client === undefined && !this.#closed && this.#hooks.wanted()) void this.client
  }

  /**
   * Gives the current client up (a reply showed it out of step with its
   * commands): what it holds is rejected, as after a break, and sent again by
   * its callers on a new client.
   */
  reset(): void {
    const client = this.#client
    // A client still connecting holds nothing it has written (and node-redis cannot destroy it).
    if (client === undefined || !client.isReady) return
    this.#client = undefined
    debug('a reply out of step with its command: a new connection is made')
    client.destroy()
    setImmediate(this.#renew)
  }

  /** Resolves once the client (made now if there is none) is ready. */
  whenReady(): Promise<void> {
    if (this.#closed || this.client.isReady) return Promise.resolve()
    return new Promise((resolve) => this.#readyWaiters.push(resolve))
  }

  /** Whether a client exists and is ready. */
  get isReady(): boolean {
    return this.#client?.isReady === true
  }

  /** Whether the link has a client now (without making one). */
  get exists(): boolean {
    return this.#client !== undefined
  }

  /** Lets the connection keep the process alive, or not. */
  reference(referenced: boolean): void {
    if (referenced === this.#referenced) return
    this.#referenced = referenced
    if (referenced) this.#client?.ref()
    else this.#client?.unref()
  }

  /** Closes: waits for commands in flight when `graceful`, drops them otherwise. */
  async close(graceful: boolean): Promise<void> {
    this.#closed = true
    for (const resolve of this.#readyWaiters) resolve()
    this.#readyWaiters = []
    const client = this.#client
    this.#client = undefined
    if (client === undefined) return
    // node-redis cannot destroy a client whose socket is still connecting: the
    // socket it is making would stay open, and keep the process alive. Let it
    // finish (or fail) first; unref'd meanwhile, so it holds nothing.
    client.unref()
    if (client.isOpen && !client.isReady) await settled(client)
    try {
      if (graceful && client.isReady) {
        // stop() awaits this: the socket holds the process until the server's
        // last replies are in, or a script would end with stop() unsettled; a
        // server that stopped answering is given up after the connect timeout.
        client.ref()
        if (!(await within(client.close().then(() => true, () => true), CONNECT_TIMEOUT, false))) {
          debug('close: no answer within %d ms, closed at once', CONNECT_TIMEOUT)
          client.destroy()
        }
      } else client.destroy()
    } catch (error) {
      debug('close: %s', (error as Error).message)
    }
  }
}

/** Resolves once a connecting client is ready, has failed or has ended (or after the connect timeout). */
function settled(client: RedisClient): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      for (const event of ['ready', 'error', 'end'] as const) client.off(event, done)
      resolve()
    }
    const timer = setTimeout(done, CONNECT_TIMEOUT)
    client.on('error', done)
    client.on('ready', done)
    client.on('end', done)
  })
}
