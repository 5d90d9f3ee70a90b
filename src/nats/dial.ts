/**
 * Dialing NATS: the connect options pyvent's options map to, the first
 * connection (tried again until it succeeds or the node stops, as a relay
 * client waits for its relay; the retries keep the process alive only while
 * the node needs the connection, so a script that only sends still ends), and
 * the connection's status afterwards
 * (a lost connection or a slow-consumer cut-off is reported, never silent;
 * nats.js reconnects to any server of the cluster by itself).
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import createDebug from 'debug'
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node'
import { ConnectionLostError } from '../errors'
import type { ResolvedOptions } from '../options'
import { redact, TransportModule } from './load'

const debug = createDebug('pyvent:nats:dial')

/** Pause between two attempts at a first connection. */
const RETRY_INTERVAL = 100
/** Pause between two reconnect attempts (nats.js tries every known server in turn). */
const RECONNECT_WAIT = 100

/** The server URLs of a `nats://` or `tls://` URL: a comma-separated list, each with its scheme or the first one's. */
export function serverList(url: string): string[] {
  const parts = url.split(',').map((part) => part.trim()).filter((part) => part !== '')
  const scheme = /^[a-z]+:\/\//i.exec(parts[0] ?? '')?.[0] ?? 'nats://'
  return parts.map((part) => (/^[a-z]+:\/\//i.test(part) ? part : scheme + part))
}

/** nats.js connect options for these pyvent options. */
export function connectOptions(nats: TransportModule, options: ResolvedOptions): ConnectionOptions {
  const servers = serverList(options.url as string)
  const auth = options.nats ?? {}
  const result: ConnectionOptions = {
    servers,
    name: `pyvent ${options.id}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: RECONNECT_WAIT,
    reconnectJitter: 0,
    timeout: Math.min(options.readyTimeout, 20_000),
    ignoreClusterUpdates: false
  }
  if (servers.some((server) => server.toLowerCase().startsWith('tls://'))) result.tls = {}
  if (auth.user !== undefined) result.user = auth.user
  if (auth.pass !== undefined) result.pass = auth.pass
  if (auth.token !== undefined) result.token = auth.token
  if (auth.nkeySeed !== undefined) result.authenticator = nats.nkeyAuthenticator(new TextEncoder().encode(auth.nkeySeed))
  if (auth.credsFile !== undefined) result.authenticator = nats.credsAuthenticator(readFileSync(auth.credsFile))
  return result
}

/** What the dialer tells its connection. */
export interface DialEvents {
  connected(nc: NatsConnection): void
  lost(error: ConnectionLostError): void
  reconnected(nc: NatsConnection): void
  /**
   * Whether the node needs the connection now (a listener, a request, a flush):
   * only then does a first connection still being tried keep the process
   * alive, so a script that only sends ends by itself when no server answers.
   */
  held(): boolean
}

/** Makes and watches one node connection's NATS connection. */
export class Dialer {
  readonly #nats: TransportModule
  readonly #options: ResolvedOptions
  readonly #events: DialEvents
  #nc: NatsConnection | undefined
  #waiters = new Set<(nc: NatsConnection | undefined) => void>()
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #attempts = 0

  constructor(nats: TransportModule, options: ResolvedOptions, events: DialEvents) {
    this.#nats = nats
    this.#options = options
    this.#events = events
    this.#dial()
  }

  /** The connection once it is up, or `undefined` if it is not within `timeout` ms (or the dialer closed). */
  connection(timeout: number): Promise<NatsConnection | undefined> {
    if (this.#nc !== undefined || this.#closed) return Promise.resolve(this.#nc)
    if (timeout <= 0) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const done = (nc: NatsConnection | undefined): void => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        resolve(nc)
      }
      const timer = setTimeout(() => done(undefined), timeout)
      this.#waiters.add(done)
    })
  }

  #dial(): void {
    this.#attempts++
    this.#nats.connect(connectOptions(this.#nats, this.#options)).then(
      (nc) => {
        if (this.#closed) {
          void nc.close()
          return
        }
        this.#nc = nc
        this.#events.connected(nc)
        for (const wake of [...this.#waiters]) wake(nc)
        void this.#watch(nc)
      },
      (error: Error) => {
        if (this.#closed) return
        if (this.#attempts === 1 || this.#attempts % 50 === 0) debug('no NATS server at %s yet: %s', redact(this.#options.url as string), error.message)
        this.#timer = setTimeout(() => this.#dial(), RETRY_INTERVAL)
        if (!this.#events.held()) this.#timer.unref()
      }
    )
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.#closed) return
      switch (status.type) {
        case 'disconnect':
          debug('disconnected from %s', status.server)
          this.#events.lost(
            new ConnectionLostError(
              'nats',
              `The connection to NATS server ${status.server} broke (the server went away, or cut this node off as a slow consumer); reconnecting to the cluster. Events published to plain listeners meanwhile may be lost (stats: disconnects, gaps).`
            )
          )
          break
        case 'reconnect':
          debug('reconnected to %s', status.server)
          this.#events.reconnected(nc)
          break
        case 'slowConsumer':
          this.#events.lost(new ConnectionLostError('nats', `A subscription of this node fell behind by ${status.pending} messages (a slow consumer).`))
          break
        case 'error':
          debug('async error: %s', status.error.message)
          break
        default:
          break
      }
    }
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    for (const wake of [...this.#waiters]) wake(undefined)
  }
}
