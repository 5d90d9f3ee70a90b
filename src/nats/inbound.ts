/**
 * What a node connection receives on NATS: event batches (gap-tracked, and
 * taken once when two of the node's subscriptions match them), requests for
 * its responders, and replies to its requests, including NATS's own "no
 * responders" status. Malformed input is dropped and counted, never thrown.
 *
 * @module
 */
import createDebug from 'debug'
import type { EventMessage } from '../codec'
import type { EngineHandlers, WireState } from '../engine'
import { parseReplySubject } from './subjects'
import { decodeEvent, decodeReply, isNoResponders, WireMsg } from './wire'

const debug = createDebug('pyvent:nats:inbound')

/** Batches remembered for de-duplication (see {@link Inbound.event}). */
const MAX_COPIES = 4096

/** The receiving half of a node connection. */
export class Inbound {
  readonly #state: WireState
  readonly #handlers: EngineHandlers
  readonly #replies: string
  readonly #listening: (signal: string) => boolean
  /** Batches that came on one of two matching subscriptions, waiting for their second copy. */
  readonly #copies = new Set<string>()

  /**
   * @param replies - the node's reply subject prefix.
   * @param listening - whether the node has a subscription for `signal` (`''`: every signal).
   */
  constructor(state: WireState, handlers: EngineHandlers, replies: string, listening: (signal: string) => boolean) {
    this.#state = state
    this.#handlers = handlers
    this.#replies = replies
    this.#listening = listening
  }

  /** Decodes an event batch or request, counting it (`count`: its events as received), or counts it malformed. */
  decode(msg: WireMsg, count = true): EventMessage | undefined {
    try {
      const message = decodeEvent(msg)
      if (count && message.kind === 'e') this.#state.stats.received += message.payloads.length
      return message
    } catch (error) {
      this.#state.stats.malformed++
      debug('dropped a malformed message on %s: %s', msg.subject, (error as Error).message)
      return undefined
    }
  }

  /** An event batch on the subscription of `listened` (`''`: every signal). */
  event(msg: WireMsg, listened: string): void {
    const message = this.decode(msg, false)
    if (message === undefined || message.kind !== 'e') return
    // With both `pyvent.e.*.>` and `pyvent.e.<signal>.>` subscribed, NATS sends each of the
    // signal's messages once per subscription: the node takes the first copy only.
    if (this.#listening(listened === '' ? message.signal : '') && this.#twice(message)) return
    const { stats, gaps } = this.#state
    stats.received += message.payloads.length
    gaps.record(message.signal, message.node, message.seq, message.payloads.length)
    stats.gaps = gaps.gaps
    stats.duplicates = gaps.duplicates
    this.#handlers.message(message)
  }

  /** Whether this batch came already, on the other of two subscriptions that both match it. */
  #twice(message: EventMessage): boolean {
    const key = `${message.node}\0${message.signal}\0${message.seq}`
    if (this.#copies.delete(key)) return true
    // Bounded: a copy that never comes (a subscription made or dropped meanwhile) ages out.
    if (this.#copies.size >= MAX_COPIES) this.#copies.delete(this.#copies.keys().next().value as string)
    this.#copies.add(key)
    return false
  }

  /** A request for one of the node's responders; its reply subject is its id. */
  request(msg: WireMsg): void {
    if (msg.reply === undefined || msg.reply === '') {
      this.#state.stats.malformed++
      debug('dropped a request without a reply subject on %s', msg.subject)
      return
    }
    const message = this.decode(msg)
    if (message !== undefined && message.kind === 'q') this.#handlers.message(message)
  }

  /** A reply to one of the node's requests, or NATS's "no responders" for it. */
  reply(msg: WireMsg): void {
    const request = parseReplySubject(this.#replies, msg.subject)
    if (request === undefined) {
      this.#state.stats.malformed++
      return
    }
    if (isNoResponders(msg)) {
      this.#handlers.message({ kind: 'r', topic: msg.subject, request, ok: false, value: undefined, noResponders: true })
      return
    }
    try {
      this.#handlers.message(decodeReply(msg, request))
    } catch (error) {
      this.#state.stats.malformed++
      debug('dropped a malformed reply: %s', (error as Error).message)
    }
  }
}
