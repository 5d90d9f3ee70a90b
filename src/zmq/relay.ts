/**
 * The relay: an XPublisher bound on `port` and a Pull socket bound on
 * `port + 1`; every message pulled is published unchanged. It runs in a
 * process of its own (see relay-process.ts), started by the node that hosts it.
 *
 * @module
 */
import createDebug from 'debug'
import { Context } from 'zeromq'
import type { Pull, XPublisher } from 'zeromq'
import { controlHeader, decodeGroupState, encodeControl, encodeNoResponders, Frames } from '../codec'
import { HEARTBEAT_TOPIC, replyTopic, requestOrigin, topicKind, TopicKind } from '../topics'
import { responderTable, WorkGroups } from './groups'
import type { ResolvedOptions } from '../options'
import type { RelayConfig, RelayStats } from './relay-types'
import { ZapHandler } from './zap'
import { endpoint, isEAGAIN, publisherSocket, pullSocket } from './sockets'
import { MAX_PARKED } from './parking'
import { Publisher } from './publisher'

const debug = createDebug('pyvent:relay')

/** Work-group events that may wait for a member with room before the relay stops reading senders. */
const MAX_WAITING = 4096
/** How often the relay reads members' reports while events wait for room, in milliseconds. */
const WAITING_POLL = 1

/**
 * One relay's sockets and forwarding loop. `bind()` once, then `run()` until
 * `stop()`; `onIdle` is called whenever the last subscription goes away.
 * @internal
 */
export class Relay {
  readonly #options: ResolvedOptions
  readonly #hold: number
  readonly #context = new Context()
  readonly #pub: XPublisher
  readonly #pull: Pull
  readonly #zap: ZapHandler | undefined
  readonly #groups = new WorkGroups()
  /** Deals found while reading members' reports, to publish once the current publish is done. */
  #deals: Frames[] = []
  #dealing = false
  /** Reads members' reports while group events wait (their reports free room). */
  #waitingPoll: NodeJS.Timeout | undefined
  /** Wakes the forwarding loop when waiting group events drop below the limit. */
  #roomFreed: (() => void) | undefined
  readonly #responders = responderTable()
  /** Topics subscribed now (latin1 of the topic bytes): the relay is idle when none is. */
  readonly #topics = new Set<string>()
  readonly #counters = { forwarded: 0, failed: 0, stalls: 0, malformed: 0, noResponders: 0 }
  readonly #heartbeat: Frames
  readonly #probeHeader: string
  #beat: NodeJS.Timeout | undefined
  #stopping = false
  /** Every publish, in order; lossless mode parks what full listener queues refuse. */
  readonly #publisher: Publisher
  /** Called when no topic is subscribed any more. */
  onIdle: (() => void) | undefined

  constructor({ options, hold }: RelayConfig) {
    this.#options = options
    this.#hold = hold
    const context = this.#context
    // A context of its own: ZeroMQ has one ZAP endpoint per context.
    if (options.curve !== undefined) this.#zap = new ZapHandler(options.curve.allowedKeys ?? [options.curve.publicKey], context)
    this.#pub = publisherSocket(options, context)
    this.#pull = pullSocket(options, context)
    // Every heartbeat and probe answer says how large a body this relay takes, so a
    // node with a larger maxMessageSize refuses what the relay would drop, and
    // whether it drops for slow listeners, so senders mark where their streams end.
    const announced = { limit: options.maxMessageSize, drop: options.delivery === 'drop' }
    this.#heartbeat = encodeControl('h', HEARTBEAT_TOPIC, announced)
    this.#probeHeader = controlHeader('p', announced)
    this.#publisher = new Publisher({
      pub: this.#pub,
      lossless: options.delivery === 'lossless',
      // A held node that missed the relay's renewals (the relay died) goes on after a few heartbeats.
      holdFor: 4 * options.heartbeatInterval,
      counters: this.#counters,
      beforeSend: () => this.#drain(),
      stopping: () => this.#stopping
    })
  }

  /** Binds both ports; throws (with both sockets closed) if either is taken. */
  async bind(): Promise<void> {
    try {
      await this.#zap?.start()
      await this.#pub.bind(endpoint(this.#options, 'pub'))
      await this.#pull.bind(endpoint(this.#options, 'pull'))
    } catch (error) {
      this.#close(0)
      throw error
    }
    debug('bound %s and %s', endpoint(this.#options, 'pub'), endpoint(this.#options, 'pull'))
  }

  /** The relay's counters. */
  get stats(): RelayStats {
    return {
      pid: process.pid,
      ...this.#counters,
      refused: this.#zap?.refused ?? 0,
      groupWaiting: this.#groups.waiting,
      groupLost: this.#groups.lost,
      topics: this.#topics.size,
      parked: this.#publisher.parking.size,
      held: this.#publisher.parking.held
    }
  }

  /** Whether any topic is subscribed. */
  get idle(): boolean {
    return this.#topics.size === 0
  }

  /** Heartbeats, then forwarding until stop() (or until the pull socket fails). */
  async run(): Promise<void> {
    this.#beat = setInterval(this.#beatOnce, this.#options.heartbeatInterval)
    this.#beatOnce()
    if (this.#hold > 0) await new Promise((resolve) => setTimeout(resolve, this.#hold))
    const pull = this.#pull
    try {
      for (;;) {
        // Too many group events wait for room: stop reading senders (they feel it as
        // backpressure) until members report progress, which travels on the other socket.
        // In drop mode the oldest waiting events go instead, counted in groupLost.
        if (this.#options.delivery === 'drop') this.#groups.shed(MAX_WAITING - 1)
        else {
          while (this.#groups.waiting >= MAX_WAITING && !this.#stopping) await new Promise<void>((resolve) => (this.#roomFreed = resolve))
          // Too much parked for slow listeners (senders that do not hold when told): stop reading until half has gone.
          const { parking } = this.#publisher
          if (parking.size >= MAX_PARKED) await parking.below(MAX_PARKED / 2)
        }
        const frames = await pull.receive()
        if (!this.#acceptable(frames)) continue
        const topic = frames[0] as Buffer
        const kind = topicKind(topic)
        if (kind === TopicKind.request) {
          await this.#request(frames)
          continue
        }
        // A member's group report on the data path: consumed here, never published.
        if (kind === TopicKind.groupState && topic.length === 3) {
          const state = decodeGroupState(frames[1] as Buffer)
          if (state === undefined) this.#counters.malformed++
          else for (const deal of this.#groups.report(state)) await this.#publish(deal)
          this.#watchWaiting()
          continue
        }
        // A probe comes back with the relay's limit in its header.
        if (kind === TopicKind.probe) frames[1] = Buffer.from(this.#probeHeader)
        await this.#publish(frames, true)
        // Each work group of the signal gets every event once more, each on one member's topic.
        if (this.#groups.size > 0) {
          const deals = this.#groups.offer(topic, frames[1] as Buffer, frames[2] as Buffer)
          if (deals === undefined) {
            // Its listeners count it as malformed too; no member can be handed part of it.
            this.#counters.malformed++
            debug('a message for a work group is not valid JSON: dealt to no member')
          } else for (const deal of deals) await this.#publish(deal)
          this.#watchWaiting()
        }
      }
    } catch (error) {
      if (this.#stopping) return
      // A relay that cannot read any more must not linger heartbeating as if it were alive.
      debug('receive loop ended: %s', (error as Error).message)
      this.#close(0)
      throw error
    }
  }

  /** The relay never parses payloads; it only refuses what cannot be a pyvent message. */
  #acceptable(frames: Buffer[]): boolean {
    const topic = frames[0]
    if (frames.length !== 3 || topic === undefined || topic.length < 2 || topic[topic.length - 1] !== 0) {
      this.#counters.malformed++
      debug('dropped a message of %d frames that is not a pyvent message', frames.length)
      return false
    }
    // Heartbeats, group shares and requests handed to responders are the relay's own:
    // a client that sends one is forging it.
    const kind = topicKind(topic)
    if (kind === TopicKind.heartbeat || kind === TopicKind.group || kind === TopicKind.responder) {
      this.#counters.malformed++
      debug('dropped a message of %d frames on the relay-only topic %s', frames.length, topic.toString('utf8', 0, topic.length - 1))
      return false
    }
    return true
  }

  /**
   * Hands a request to one responder of its signal, in turn; with none, answers
   * the requester at once that nobody responds (the relay reads the header here,
   * and only here, for the requester's reply topic and request id).
   */
  async #request(frames: Buffer[]): Promise<void> {
    await this.#drain()
    const [responder] = this.#responders.pick(frames[0] as Buffer)
    if (responder !== undefined) {
      await this.#publish([responder, frames[1] as Buffer, frames[2] as Buffer], true)
      return
    }
    const origin = requestOrigin(frames[0] as Buffer, frames[1] as Buffer)
    if (origin === undefined) {
      this.#counters.malformed++
      debug('dropped a message of %d frames: a request that names no signal, requester or request id', frames.length)
      return
    }
    this.#counters.noResponders++
    await this.#publish(encodeNoResponders(replyTopic(origin.node), origin.request, origin.signal))
  }

  readonly #beatOnce = (): void => this.#publisher.beat(this.#heartbeat)

  #publish(frames: Frames, counted = false): Promise<boolean> {
    return this.#publisher.publish(frames, counted)
  }

  /**
   * Reads the subscription messages the publisher has queued, without waiting
   * (its receive timeout is 0, so each receive settles at once).
   */
  async #drain(): Promise<void> {
    const pub = this.#pub
    let becameIdle = false
    while (!this.#stopping && pub.readable) {
      let frame: Buffer | undefined
      try {
        ;[frame] = await pub.receive()
      } catch (error) {
        if (!isEAGAIN(error)) debug('reading subscriptions failed: %s', (error as Error).message)
        break
      }
      if (frame === undefined || frame.length === 0) continue
      if (frame[0] !== 0 && frame[0] !== 1) {
        // Not a subscription: a message a member sent upstream, its group state.
        const state = decodeGroupState(frame)
        if (state === undefined) {
          this.#counters.malformed++
          debug('dropped a message of 1 frames from a subscriber that is not a group state')
        } else this.#deals.push(...this.#groups.report(state))
        continue
      }
      const topic = frame.toString('latin1', 1)
      if (frame[0] === 1) this.#topics.add(topic)
      else if (this.#topics.delete(topic) && this.#topics.size === 0) becameIdle = true
      if (debug.enabled) debug('%s %s', frame[0] === 1 ? 'subscribe' : 'unsubscribe', JSON.stringify(frame.toString('utf8', 1)))
      this.#deals.push(...this.#groups.update(frame))
      this.#responders.update(frame)
    }
    // Published after the publish in progress (a drain runs inside one), never inside it.
    if (this.#deals.length > 0 && !this.#dealing) {
      this.#dealing = true
      queueMicrotask(() => void this.#publishDeals())
    }
    if (becameIdle) this.onIdle?.()
  }

  async #publishDeals(): Promise<void> {
    while (this.#deals.length > 0 && !this.#stopping) {
      const deals = this.#deals
      this.#deals = []
      for (const deal of deals) await this.#publish(deal)
    }
    this.#dealing = false
    this.#watchWaiting()
  }

  /** While group events wait, reads members' reports often; once few wait, lets the forwarding loop read again. */
  #watchWaiting(): void {
    const waiting = this.#groups.waiting
    if (waiting < MAX_WAITING && this.#roomFreed !== undefined) {
      this.#roomFreed()
      this.#roomFreed = undefined
    }
    if (waiting > 0 && this.#waitingPoll === undefined && !this.#stopping) {
      this.#waitingPoll = setInterval(() => void this.#drain(), WAITING_POLL)
    } else if (waiting === 0 && this.#waitingPoll !== undefined) {
      clearInterval(this.#waitingPoll)
      this.#waitingPoll = undefined
    }
  }

  /**
   * Stops forwarding and closes the sockets. What is parked for a full listener
   * queue is given up (counted in `failed`); a publish in progress may finish,
   * but no later than `linger`; what is queued for listeners then gets what is
   * left of linger (none if a listener is not reading).
   */
  async stop(): Promise<void> {
    if (this.#stopping) return
    this.#stopping = true
    clearInterval(this.#beat)
    // What waits for a full listener queue is given up at once, as a publish refused while stopping is.
    this.#publisher.close()
    const linger = this.#options.linger
    const since = Date.now()
    let timer: NodeJS.Timeout | undefined
    const lingered = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), linger)))
    const outcome = await Promise.race([this.#publisher.settled.then(() => 'drained' as const), lingered])
    clearTimeout(timer)
    this.#close(this.#publisher.abandoned || outcome === 'late' ? 0 : Math.max(0, linger - (Date.now() - since)))
    debug('stopped')
  }

  #close(linger: number): void {
    this.#stopping = true
    this.#publisher.close()
    clearInterval(this.#beat)
    clearInterval(this.#waitingPoll)
    this.#roomFreed?.()
    this.#pull.close()
    this.#pub.linger = linger
    this.#pub.close()
    this.#zap?.close()
  }
}
