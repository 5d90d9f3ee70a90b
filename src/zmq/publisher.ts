/**
 * The relay's publishing half: every message the relay publishes goes through
 * one chain (zeromq.js allows one pending send per socket), and in lossless
 * mode what a full listener queue refuses is parked (parking.ts) instead of
 * retried in place, so the relay goes on reading.
 *
 * @module
 */
import createDebug from 'debug'
import type { XPublisher } from 'zeromq'
import type { Frames } from '../codec'
import { Attempt, HEARTBEAT_KEY, parkingKey, ParkingLot } from './parking'
import { isEAGAIN } from './sockets'

const debug = createDebug('pyvent:relay')

/** The relay's counters this half keeps. */
export interface PublishCounters {
  forwarded: number
  failed: number
  stalls: number
}

/** What the publisher needs from its relay. */
export interface PublisherConfig {
  pub: XPublisher
  lossless: boolean
  /** How long a hold lasts unless renewed, in milliseconds. */
  holdFor: number
  counters: PublishCounters
  /** Runs before every send: the relay reads its subscriptions, so the group table is current. */
  beforeSend(): Promise<void>
  /** Whether the relay is stopping: a refused publish is then given up. */
  stopping(): boolean
}

/** Publishes in order, parking what full listener queues refuse; see the module comment. */
export class Publisher {
  readonly parking: ParkingLot
  readonly #config: PublisherConfig
  /** The publish in progress, and every one queued behind it. */
  #sending: Promise<boolean> = Promise.resolve(true)
  #beating = false
  /** A publish gave up because the relay stopped while a listener's queue was full. */
  abandoned = false

  constructor(config: PublisherConfig) {
    this.#config = config
    this.parking = new ParkingLot({
      attempt: (frames) => this.#attempt(frames),
      chain: (task) => this.inChain(task),
      published: (counted) => void (counted && config.counters.forwarded++),
      holdFor: config.holdFor
    })
  }

  /** Settles once every publish queued so far has settled. */
  get settled(): Promise<unknown> {
    return this.#sending
  }

  /**
   * Publishes after everything queued before. `counted`: a message from a node,
   * counted in `forwarded` once published. Resolves `true` once published or
   * parked, `false` if it failed.
   */
  publish(frames: Frames, counted = false): Promise<boolean> {
    this.#sending = this.#sending.then(() => this.#publishOnce(frames, counted))
    return this.#sending
  }

  /** Runs `task` after every publish queued so far, and before any queued later. */
  inChain(task: () => Promise<unknown>): void {
    this.#sending = this.#sending.then(task).then(() => true)
  }

  /**
   * A heartbeat, unless one still waits (a stuck listener must not pile them
   * up); and the holds renewed, so that a held node whose relay died goes on
   * after one hold.
   */
  beat(heartbeat: Frames): void {
    if (!this.#beating && !this.parking.has(HEARTBEAT_KEY)) {
      this.#beating = true
      void this.publish(heartbeat).then(() => (this.#beating = false))
    }
    if (this.parking.held > 0) this.inChain(() => this.parking.renew())
  }

  async #publishOnce(frames: Frames, counted: boolean): Promise<boolean> {
    const parking = this.parking
    let key: string | undefined
    if (parking.size > 0) {
      // A node with parked messages: this one waits behind them, whatever its signal.
      key = parkingKey(frames)
      if (parking.has(key)) {
        await parking.park(key, frames, counted)
        return true
      }
    }
    const outcome = await this.#attempt(frames)
    if (outcome === 'full') {
      await parking.park(key ?? parkingKey(frames), frames, counted)
      return true
    }
    if (outcome === 'sent' && counted) this.#config.counters.forwarded++
    return outcome === 'sent'
  }

  // A no-drop publisher with a full listener queue fails the send with EAGAIN at
  // once instead of waiting (libzmq reports it writable regardless): 'full', which
  // lossless mode parks and drop mode counts as failed.
  async #attempt(frames: Frames): Promise<Attempt> {
    const config = this.#config
    try {
      await config.beforeSend()
      await config.pub.send(frames)
      return 'sent'
    } catch (error) {
      if (config.stopping()) {
        this.abandoned = true
        return 'failed'
      }
      if (!config.lossless || !isEAGAIN(error)) {
        config.counters.failed++
        debug('publish failed: %s', (error as Error).message)
        return 'failed'
      }
      config.counters.stalls++
      return 'full'
    }
  }

  /** Gives up what is parked (counted in `failed`), at stop. */
  close(): void {
    const given = this.parking.close()
    if (given === 0) return
    this.#config.counters.failed += given
    this.abandoned = true
    debug('stopped with %d messages parked for slow listeners: not passed on', given)
  }
}
