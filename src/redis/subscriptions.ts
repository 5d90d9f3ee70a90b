/**
 * A node's subscriber connection: its channel and pattern subscriptions (made
 * on each new client once it is ready, never while it connects: see
 * {@link LinkHooks.opened}; the link makes a new client after a break too),
 * what readiness must wait for, and the one rule that keeps an event from
 * reaching a node twice when it listens both to a signal and to `Any`.
 *
 * @module
 */
import createDebug from 'debug'
import type { Link, LinkHooks } from './link'
import type { RedisClient } from './load'
import { EVENT_PATTERN, eventChannel } from './wire'

const debug = createDebug('pyvent:redis:subscriptions')

/** Called with each message and the channel it came on. */
export type Listener = (message: string, channel: string) => void

/** The subscriptions of one connection. */
export class Subscriptions {
  readonly link: Link
  readonly #deliver: Listener
  readonly #channels = new Map<string, Listener>()
  readonly #patterns = new Map<string, Listener>()
  /** Subscriptions and set-ups that readiness waits for. */
  readonly #pending = new Set<Promise<void>>()
  /** The last subscription made to each channel (`c` + name) or pattern (`p` + pattern), on the client then ready. */
  readonly #confirmed = new Map<string, Promise<void>>()
  /**
   * The last event that came on a signal's own subscription. Redis sends a
   * publish to a channel's subscribers, then to the matching patterns, so the
   * `Any` copy of the same publish comes right after it.
   */
  #lastExact: [string, string] | undefined

  /** `makeLink(opened)`: the subscriber link, calling `opened` when each new client is ready. `deliver`: every event, once. */
  constructor(makeLink: (opened: NonNullable<LinkHooks['opened']>) => Link, deliver: Listener) {
    this.#deliver = deliver
    this.link = makeLink((client) => {
      for (const [channel, listener] of this.#channels) this.#confirmed.set(`c${channel}`, this.track(client.subscribe(channel, listener)))
      for (const [pattern, listener] of this.#patterns) this.#confirmed.set(`p${pattern}`, this.track(client.pSubscribe(pattern, listener)))
    })
  }

  /**
   * Subscribes to a channel now if the client is ready, else when it is;
   * resolves (never rejects) once Redis confirmed it.
   */
  subscribe(channel: string, listener: Listener): Promise<void> {
    this.#channels.set(channel, listener)
    return this.#make(`c${channel}`, (client) => client.subscribe(channel, listener))
  }

  unsubscribe(channel: string): void {
    if (!this.#channels.delete(channel)) return
    this.#confirmed.delete(`c${channel}`)
    if (this.#lastExact?.[0] === channel) this.#lastExact = undefined
    // A client not ready yet subscribes only to what is still listed.
    if (this.link.isReady) void this.track(this.link.client.unsubscribe(channel))
  }

  /** Receives the events of `signal` (`''`: of every signal, through the pattern). */
  listen(signal: string): void {
    if (signal !== '') {
      void this.subscribe(eventChannel(signal), this.#onEvent)
      return
    }
    this.#patterns.set(EVENT_PATTERN, this.#onPattern)
    void this.#make(`p${EVENT_PATTERN}`, (client) => client.pSubscribe(EVENT_PATTERN, this.#onPattern))
  }

  unlisten(signal: string): void {
    if (signal !== '') this.unsubscribe(eventChannel(signal))
    else if (this.#patterns.delete(EVENT_PATTERN)) {
      this.#confirmed.delete(`p${EVENT_PATTERN}`)
      if (this.link.isReady) void this.track(this.link.client.pUnsubscribe(EVENT_PATTERN))
    }
  }

  /**
   * Runs `subscribe` (to `key`: `c` + channel, or `p` + pattern) on the client
   * if it is ready; else the client (made now if there is none) subscribes to
   * all that is listed once it is ready, and the promise returned waits for
   * `key`'s.
   */
  #make(key: string, subscribe: (client: RedisClient) => Promise<void>): Promise<void> {
    const client = this.link.client
    if (client.isReady) {
      const confirmed = this.track(subscribe(client))
      this.#confirmed.set(key, confirmed)
      return confirmed
    }
    // opened() runs before whenReady() resolves: the subscription to key is made by then.
    return this.track(this.link.whenReady().then(() => this.#confirmed.get(key)))
  }

  readonly #onEvent = (text: string, channel: string): void => {
    if (this.#patterns.size > 0) this.#lastExact = [channel, text]
    this.#deliver(text, channel)
  }

  readonly #onPattern = (text: string, channel: string): void => {
    const last = this.#lastExact
    if (last !== undefined && last[0] === channel && last[1] === text) {
      // The same publish, already delivered through the signal's own subscription.
      this.#lastExact = undefined
      return
    }
    this.#deliver(text, channel)
  }

  /** Makes readiness wait for `promise`; returns it, never rejecting. */
  track(promise: Promise<unknown>): Promise<void> {
    const settled = promise.then(
      () => undefined,
      (error: Error) => debug('subscription or set-up failed: %s', error.message)
    )
    this.#pending.add(settled)
    void settled.then(() => this.#pending.delete(settled))
    return settled
  }

  /** Resolves once everything tracked so far has settled. */
  settled(): Promise<unknown> {
    return Promise.all([...this.#pending])
  }
}
