/**
 * What a node sends on NATS, in order: event batches (events queued in the
 * same tick for the same signal and sender are coalesced into one NATS
 * message, as on the relay), requests and replies. Messages wait here until
 * the connection first comes up; after that nats.js buffers them across
 * reconnects. Payload text published and not yet proven at the server by a
 * round trip is counted, for backpressure. What it gives up on is counted in
 * `stats().unsent`, and a publish nats.js refused is reported as a
 * {@link SendFailedError}.
 *
 * @module
 */
import createDebug from 'debug'
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node'
import type { ClientStats } from '../engine'
import { SendFailedError } from '../errors'
import type { TransportModule } from './load'
import { eventSubject } from './subjects'
import { eventHeaders, HeaderFields } from './wire'

const debug = createDebug('pyvent:nats:outbox')

/** Most events coalesced into one message. */
const MAX_BATCH_EVENTS = 512
/** Most payload text (UTF-16 units) coalesced into one message. */
const MAX_BATCH_CHARS = 64 * 1024

interface Batch {
  signal: string
  sender: string
  seq: number
  time: number
  payloads: string[]
  chars: number
}

/** One NATS message to publish. */
export interface Outgoing {
  subject: string
  fields: HeaderFields
  body: string
  reply?: string
  /** How many of the user's events, requests or replies it carries. */
  weight: number
}

/** The outbound path of one node connection. */
export class Outbox {
  readonly #nats: TransportModule
  readonly #node: string
  /** The largest body this node may send now, in bytes. */
  readonly #limit: () => number
  readonly #stats: ClientStats
  readonly #report: (error: SendFailedError) => void
  #nc: NatsConnection | undefined
  #open: Batch | undefined
  #sealScheduled = false
  /** Messages waiting for the connection (only before it first came up). */
  readonly #waiting: Outgoing[] = []
  #closed = false
  /** Payload text published since the last proven round trip. */
  unconfirmedChars = 0

  /** `report`: a {@link SendFailedError}, for the node's `error` event. */
  constructor(nats: TransportModule, node: string, limit: () => number, stats: ClientStats, report: (error: SendFailedError) => void) {
    this.#nats = nats
    this.#node = node
    this.#limit = limit
    this.#stats = stats
    this.#report = report
  }

  /** Adds one event to this tick's batch of (signal, sender), numbered `seq`. */
  event(signal: string, sender: string, json: string, seq: number): void {
    if (this.#closed) return
    const open = this.#open
    const cap = Math.min(MAX_BATCH_CHARS, Math.floor(this.#limit() / 4))
    if (open !== undefined && open.signal === signal && open.sender === sender && open.payloads.length < MAX_BATCH_EVENTS && open.chars + json.length + 1 <= cap) {
      open.payloads.push(json)
      open.chars += json.length + 1
    } else {
      if (open !== undefined) this.seal()
      this.#open = { signal, sender, seq, time: Date.now(), payloads: [json], chars: json.length + 1 }
      if (!this.#sealScheduled) {
        this.#sealScheduled = true
        setImmediate(this.#sealTick)
      }
    }
    this.unconfirmedChars += json.length
  }

  readonly #sealTick = (): void => {
    this.#sealScheduled = false
    this.seal()
  }

  /** Publishes the batch being filled, if any. */
  seal(): void {
    const open = this.#open
    if (open === undefined) return
    this.#open = undefined
    this.send({
      subject: eventSubject('e', open.signal, open.sender),
      fields: eventHeaders(this.#node, open.seq, open.time),
      body: '[' + open.payloads.join(',') + ']',
      weight: open.payloads.length
    })
  }

  /** Publishes behind everything queued before (the open batch is sealed first). */
  send(message: Outgoing): void {
    if (this.#closed) return
    if (this.#open !== undefined) this.seal()
    if (this.#nc === undefined) this.#waiting.push(message)
    else this.#write(message)
  }

  /** The connection is up: publishes what waited for it. */
  attach(nc: NatsConnection): void {
    this.#nc = nc
    for (const message of this.#waiting.splice(0)) this.#write(message)
  }

  #write(message: Outgoing): void {
    const h: MsgHdrs = this.#nats.headers()
    for (const [name, value] of message.fields) h.set(name, value)
    try {
      ;(this.#nc as NatsConnection).publish(message.subject, message.body, { headers: h, ...(message.reply === undefined ? {} : { reply: message.reply }) })
    } catch (error) {
      // A closed or draining connection, or a body over the server's limit (send() checks maxPayloadBytes first).
      debug('publish on %s failed: %s', message.subject, (error as Error).message)
      this.#stats.unsent += message.weight
      if (this.#closed) return
      this.#report(
        new SendFailedError(
          'nats',
          `NATS refused a message on ${message.subject} (${(error as Error).message}). pyvent does not send it again. Counted in stats().unsent.`,
          message.weight,
          { cause: error }
        )
      )
    }
  }

  /** Drops what has not been published (counted in `unsent`: the node stopped before the server took it). */
  close(): void {
    this.#closed = true
    this.#stats.unsent += (this.#open?.payloads.length ?? 0) + this.#waiting.reduce((sum, message) => sum + message.weight, 0)
    this.#open = undefined
    this.#waiting.length = 0
  }
}
