/**
 * A connection's subscriptions, kept so they can be asked for before the NATS
 * connection is up: each is made on the server as soon as there is one (nats.js
 * makes them again by itself after a reconnect).
 *
 * @module
 */
import createDebug from 'debug'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Interest } from './groups'
import type { WireMsg } from './wire'

const debug = createDebug('pyvent:nats:interests')

interface Wanted extends Interest {
  subject: string
  queue: string | undefined
  onMessage: (msg: WireMsg) => void
  real: { unsubscribe(): void } | undefined
  closed: boolean
}

/** The subscriptions of one node connection. */
export class Interests {
  readonly #wanted = new Set<Wanted>()
  #nc: NatsConnection | undefined
  #closed = false
  /** When the last subscription was written to the server (0: never). */
  subscribedAt = 0

  /** Subscribes now if connected, else once connected. `onMessage` is not called after {@link close}. */
  subscribe(subject: string, queue: string | undefined, onMessage: (msg: WireMsg) => void): Interest {
    const wanted: Wanted = {
      subject,
      queue,
      onMessage,
      real: undefined,
      closed: false,
      unsubscribe: () => {
        if (wanted.closed) return
        wanted.closed = true
        this.#wanted.delete(wanted)
        if (!this.#closed) wanted.real?.unsubscribe()
      }
    }
    this.#wanted.add(wanted)
    if (this.#nc !== undefined) this.#make(wanted)
    return wanted
  }

  /** The connection is up: makes every subscription asked for so far. */
  attach(nc: NatsConnection): void {
    this.#nc = nc
    for (const wanted of this.#wanted) this.#make(wanted)
  }

  #make(wanted: Wanted): void {
    this.subscribedAt = Date.now()
    wanted.real = (this.#nc as NatsConnection).subscribe(wanted.subject, {
      ...(wanted.queue === undefined ? {} : { queue: wanted.queue }),
      callback: (error, msg) => {
        if (error !== null) {
          debug('subscription %s ended: %s', wanted.subject, error.message)
          return
        }
        if (!this.#closed && !wanted.closed) wanted.onMessage(msg)
      }
    })
  }

  /** Nothing is handed on after this. */
  close(): void {
    this.#closed = true
  }
}
