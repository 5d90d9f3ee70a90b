/**
 * A durable work group on JetStream. The signal's events are kept in a stream
 * (`pyvent_<hash of the signal>`, subjects `pyvent.e.<signal>.>`, at most
 * `maxStreamLength` messages); the group is a durable pull consumer on it
 * (explicit acks, `ack_wait` = `claimAfter`, `max_deliver` = `maxDeliveries + 1`).
 * A member pulls only while it has room (`concurrency` unfinished events) and
 * runs at most `concurrency` of them at once (a message can hold more: the
 * rest wait here, in order), acks a message once every event in it finished
 * without error, and otherwise
 * leaves it unacked, so JetStream hands it out again after `claimAfter`. A
 * message whose last delivery failed, or that comes back once more because its
 * members died each time, goes to the dead-letter stream (deadletters.ts) and
 * is terminated.
 *
 * The unit JetStream delivers is a NATS message, which is one sender's batch
 * (the events a node sent on the signal in one tick): a failed event is
 * redelivered with its whole batch, so the others run again (at least once).
 *
 * @module
 */
import { createHash } from 'node:crypto'
import createDebug from 'debug'
import type { NatsConnection } from '@nats-io/transport-node'
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream'
import type { EventMessage } from '../codec'
import { PyventEvent } from '../dispatcher'
import { UnsupportedError } from '../errors'
import type { EngineHandlers, Membership } from '../engine'
import type { ResolvedOptions } from '../options'
import { deadLetter } from './deadletters'
import { GroupMember, MemberHost } from './groups'
import { JetStreamModule, loadJetStream } from './load'
import { signalFilter } from './subjects'

const debug = createDebug('pyvent:nats:durable')

/** How long one pull waits for messages before it is made again. */
const PULL_EXPIRES = 1000

/**
 * The error for a JetStream call that failed: an {@link UnsupportedError} when
 * the server has no JetStream (`nats-server` without `-js`), else `what`
 * `failed` with the server's reason.
 */
export function jetStreamError(error: Error, what: string, failed: string): Error {
  if (error.name === 'JetStreamNotEnabled' || /jetstream (is )?not enabled/i.test(error.message)) {
    return new UnsupportedError('nats', `${what} needs JetStream, which the NATS server does not have enabled (${error.message}): start nats-server with -js, or enable JetStream in its configuration.`, { cause: error })
  }
  return new Error(`${what} ${failed}: ${error.message}`, { cause: error })
}

/** A short, valid JetStream name for `name` (stream and consumer names forbid `.`, `*`, `>`, whitespace and slashes). */
export function jsName(prefix: string, name: string): string {
  return prefix + createHash('sha256').update(name).digest('hex').slice(0, 24)
}

/** The stream of `signal`'s events. */
export function streamName(signal: string): string {
  return jsName('pyvent_', signal)
}

/** Tells the deliveries of one member from another's: a node that leaves a group and joins again has a new member, while the old one's events may still run. */
let members = 0

interface Open {
  msg: JsMsg
  message: EventMessage
  /** When JetStream last started counting claimAfter for it: the pull, or the last `working()`. */
  since: number
  /** Events of the message not finished yet. */
  open: number
  /** The first failure, and which events failed. */
  error: unknown
  failed: number[]
}

/** One member of a durable group. */
export class DurableMember implements GroupMember {
  #membership: Membership
  readonly #host: MemberHost
  readonly #options: ResolvedOptions
  readonly #connection: () => NatsConnection | undefined
  readonly #handlers: EngineHandlers
  readonly #js: JetStreamModule
  /** Messages pulled and not finished, by key: this member's tag and a count of its deliveries (a redelivery of a message still open here is another). */
  readonly #open = new Map<string, Open>()
  readonly #tag = `m${++members}`
  #delivered = 0
  /** Events pulled and not finished (handed over or waiting in {@link #backlog}). */
  #unfinished = 0
  /** Stream sequences of the messages this member is moving to the dead-letter stream. */
  readonly #burying = new Set<number>()
  /** Events pulled and not handed over yet, oldest first, with their message's key: one message can hold more than `concurrency`. */
  readonly #backlog: { key: string; event: EventMessage }[] = []
  /** Events handed over and not finished. */
  #inHand = 0
  #pulling: ConsumerMessages | undefined
  #wake: (() => void) | undefined
  #running = false
  #left = false
  /** Set up once: the stream and the consumer exist. */
  #setup: Promise<boolean> | undefined
  /** The last set-up failed because the server has no JetStream. */
  #unsupported: UnsupportedError | undefined

  constructor(membership: Membership, host: MemberHost, options: ResolvedOptions, connection: () => NatsConnection | undefined, handlers: EngineHandlers) {
    this.#membership = membership
    this.#host = host
    this.#options = options
    this.#connection = connection
    this.#handlers = handlers
    this.#js = loadJetStream(options.url as string)
    if (connection() !== undefined) this.connected()
  }

  /** Resolves `true` once the stream and consumer exist (before which events of a `from: 'now'` group are not kept). */
  ready(): Promise<boolean> {
    // Not set up (it failed): try again, so a server that gained JetStream since (a reload, no reconnect) is found.
    if (this.#setup === undefined) this.connected()
    return this.#setup ?? Promise.resolve(false)
  }

  unsupported(): Error | undefined {
    return this.#unsupported
  }

  connected(): void {
    const nc = this.#connection()
    if (nc === undefined || this.#left) return
    this.#setup ??= this.#create(nc).catch((error: Error) => {
      this.#setup = undefined
      const failure = jetStreamError(error, `The durable group "${this.#membership.group}" of "${this.#membership.signal}"`, 'could not be set up on JetStream')
      if (failure instanceof UnsupportedError) {
        // Tried again by each probe: reported the first time only, and that error stays the one ready() gives.
        if (this.#unsupported !== undefined) return false
        this.#unsupported = failure
      }
      this.#handlers.error(failure)
      return false
    })
    void this.#setup.then((ok) => {
      if (ok) void this.#run()
    })
  }

  async #create(nc: NatsConnection): Promise<boolean> {
    const { signal, group, durable } = this.#membership
    const settings = durable!
    const jsm = await this.#js.jetstreamManager(nc)
    const stream = streamName(signal)
    await jsm.streams.add({
      name: stream,
      description: `pyvent events of signal ${JSON.stringify(signal)}`,
      subjects: [signalFilter('e', signal)],
      max_msgs: this.#options.maxStreamLength,
      discard: this.#js.DiscardPolicy.Old
    }).catch(async (error: Error) => {
      // Another member made it first with the same name: use it as it is.
      await jsm.streams.info(stream).catch(() => {
        throw error
      })
    })
    const name = jsName('g_', group)
    await jsm.consumers.add(stream, {
      durable_name: name,
      description: `pyvent group ${JSON.stringify(group)}`,
      ack_policy: this.#js.AckPolicy.Explicit,
      ack_wait: settings.claimAfter * 1_000_000,
      max_deliver: settings.maxDeliveries + 1,
      deliver_policy: settings.from === 'start' ? this.#js.DeliverPolicy.All : this.#js.DeliverPolicy.New,
      max_ack_pending: -1
    }).catch(async (error: Error) => {
      await jsm.consumers.info(stream, name).catch(() => {
        throw error
      })
    })
    debug('durable group %s of %s on stream %s, consumer %s', group, signal, stream, name)
    this.#unsupported = undefined
    return true
  }

  /** Pulls while this member has room and the group is joined. */
  async #run(): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      const nc = this.#connection()
      if (nc === undefined) return
      const { signal, group } = this.#membership
      const consumer = await this.#js.jetstream(nc).consumers.get(streamName(signal), jsName('g_', group))
      while (!this.#left) {
        const room = this.#membership.capacity - this.#unfinished
        if (room <= 0) {
          await new Promise<void>((resolve) => (this.#wake = resolve))
          continue
        }
        const messages = await consumer.fetch({ max_messages: room, expires: PULL_EXPIRES })
        this.#pulling = messages
        for await (const msg of messages) this.#receive(msg)
        this.#pulling = undefined
      }
    } catch (error) {
      if (!this.#left) {
        debug('pulling stopped: %s', (error as Error).message)
        this.#handlers.error(error as Error)
      }
    } finally {
      this.#running = false
    }
  }

  #receive(msg: JsMsg): void {
    if (this.#left) {
      // Pulled while leaving: back to the group at once.
      settle(() => msg.nak())
      return
    }
    // Handed out again while this member stores its dead letter: the burial ends it.
    if (this.#burying.has(msg.seq)) return
    const deliveries = msg.info.deliveryCount
    const message = this.#host.decode(msg)
    if (message === undefined || message.kind !== 'e') {
      // Nothing any member could handle: stop it coming back.
      settle(() => msg.term('malformed'))
      return
    }
    const settings = this.#membership.durable!
    if (deliveries > settings.maxDeliveries) {
      // Its members died (or overran claimAfter) on every delivery: give it up without running it again.
      void this.#bury(msg, message, message.payloads.map((_, i) => i), `Given up after ${settings.maxDeliveries} deliveries that were never finished (the member died or took longer than claimAfter each time).`, deliveries - 1)
      return
    }
    const key = `${this.#tag}-${++this.#delivered}`
    this.#open.set(key, { msg, message, since: Date.now(), open: message.payloads.length, error: undefined, failed: [] })
    this.#unfinished += message.payloads.length
    const { topic, group } = this.#membership
    for (let i = 0; i < message.payloads.length; i++) {
      const event = { ...message, topic, group, seq: message.seq + i, payloads: [message.payloads[i]], receipts: [`${key}.${i}`], deliveries: [deliveries] }
      this.#backlog.push({ key, event })
    }
    this.#pump()
  }

  /** Hands over waiting events while fewer than `concurrency` run. */
  #pump(): void {
    while (this.#backlog.length > 0 && this.#inHand < this.#membership.capacity) {
      const { key, event } = this.#backlog.shift()!
      const open = this.#open.get(key)
      // JetStream counts claimAfter from the pull: time an event waited here for
      // room is not its own, so its start counts anew (what it then runs is; to
      // within a tenth of claimAfter, which spares a message per event).
      if (open !== undefined && Date.now() - open.since > this.#membership.durable!.claimAfter / 10) {
        open.since = Date.now()
        settle(() => open.msg.working())
      }
      this.#inHand++
      this.#host.deliver(event)
    }
  }

  update(membership: Membership): void {
    this.#membership = membership
    this.#pump()
    this.#wake?.()
  }

  finished(receipt: string | undefined, error: unknown): void {
    if (receipt === undefined) return
    const dot = receipt.lastIndexOf('.')
    const key = receipt.slice(0, dot)
    const index = receipt.slice(dot + 1)
    // Not one of this member's open messages: an event of a member that left before it finished.
    const open = this.#open.get(key)
    if (open === undefined) return
    this.#unfinished--
    this.#inHand--
    if (error !== undefined) {
      open.error ??= error
      open.failed.push(Number(index))
    }
    if (--open.open === 0) {
      this.#open.delete(key)
      if (open.failed.length === 0) settle(() => open.msg.ack())
      else if (open.msg.info.deliveryCount >= this.#membership.durable!.maxDeliveries) void this.#bury(open.msg, open.message, open.failed, describe(open.error), open.msg.info.deliveryCount)
      // Else left unacked: JetStream hands it out again after claimAfter.
    }
    this.#pump()
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  async #bury(msg: JsMsg, message: EventMessage, indexes: number[], error: string, deliveries: number): Promise<void> {
    const nc = this.#connection()
    if (nc === undefined) return
    // Storing the letter takes round trips (the first one makes the stream): keep
    // JetStream from handing the message out meanwhile, however short claimAfter is.
    this.#burying.add(msg.seq)
    settle(() => msg.working())
    const working = setInterval(() => settle(() => msg.working()), Math.max(5, this.#membership.durable!.claimAfter / 2))
    working.unref()
    try {
      const { signal, group } = this.#membership
      for (const i of indexes) {
        const id = new PyventEvent(signal, message.sender, message.payloads[i], message.node, message.seq + i, message.time).id
        // Keyed by stream, group (consumer) and sequence: a member that buries it again (it came back to another one meanwhile) stores nothing twice.
        const stored = await deadLetter(nc, this.#js, this.#options, { message, index: i, id, key: `${msg.info.stream}:${msg.info.consumer}:${msg.seq}.${i}`, group, error, deliveries, signal })
        if (stored) this.#host.deadLettered()
      }
      msg.term(error.slice(0, 200))
    } catch (failure) {
      debug('could not dead-letter %s: %s', msg.seq, (failure as Error).message)
    } finally {
      clearInterval(working)
      this.#burying.delete(msg.seq)
    }
  }

  leave(): void {
    this.#left = true
    void this.#pulling?.close()
    // Messages with events never handed over go back to the group at once (those of them that ran, run again).
    const back = new Set(this.#backlog.map(({ key }) => key))
    this.#backlog.length = 0
    for (const key of back) {
      const open = this.#open.get(key)
      this.#open.delete(key)
      if (open !== undefined) settle(() => open.msg.nak())
    }
    this.#wake?.()
  }
}

/** An ack, nak or term: on a connection that closed meanwhile it fails, and JetStream hands the message out again. */
function settle(action: () => void): void {
  try {
    action()
  } catch (error) {
    debug('could not settle a message: %s', (error as Error).message)
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return `Error: ${String(error)}`
}
