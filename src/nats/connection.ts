/**
 * A node's connection to a NATS server (or cluster): its {@link Connection}.
 * Subscriptions are made per signal (the dispatcher filters senders
 * locally); events go out in batches (outbox.ts); requests use NATS's
 * request/reply with the server's "no responders" status; readiness and
 * flushes are round trips to the server.
 *
 * @module
 */
import createDebug from 'debug'
import type { NatsConnection } from '@nats-io/transport-node'
import type { EventMessage } from '../codec'
import { requestTopic } from '../topics'
import type { ClientStats, Connection, DeadLetter, EngineHandlers, Membership, WireState } from '../engine'
import type { ResolvedOptions } from '../options'
import { Dialer } from './dial'
import { within } from '../within'
import { DurableMember, jetStreamError } from './durable'
import { ConnectionLostError } from '../errors'
import { GroupMember, Interest, MemberHost, QueueMember } from './groups'
import { Inbound } from './inbound'
import { Interests } from './interests'
import { Outbox } from './outbox'
import { applyHold } from './hold'
import { loadTransport } from './load'
import { eventSubject, replyPrefix, replySubject, signalFilter } from './subjects'
import { eventHeaders, replyHeaders, WireMsg } from './wire'
import { readDeadLetters } from './deadletters'

const debug = createDebug('pyvent:nats:connection')

/** Payload text published but not yet proven at the server past which `publish()` waits for a round trip. */
const MAX_UNCONFIRMED_CHARS = 1024 * 1024
/** Room kept in the server's max_payload for the headers. */
const HEADER_ROOM = 1024
/**
 * How long a subscription takes to reach the other servers of a cluster, as
 * measured on one machine (test/nats.test.ts: a few milliseconds), with room: a round
 * trip proves a subscription at this node's own server only, so a probe made
 * within this time of a subscription also waits out the rest of it.
 */
const CLUSTER_SETTLE = 25
/** How often the hold on the process is looked at again (waits and requests end by their own timers). */
const HOLD_CHECK_INTERVAL = 100

const RESOLVED = Promise.resolve()

/** The NATS engine's {@link Connection}. */
export class NatsClient implements Connection, MemberHost {
  readonly stats: ClientStats
  readonly #options: ResolvedOptions
  readonly #node: string
  readonly #handlers: EngineHandlers
  readonly #seqs: Map<string, number>
  readonly #gaps: WireState['gaps']
  readonly #inbound: Inbound
  readonly #dialer: Dialer
  #nc: NatsConnection | undefined
  readonly #interests = new Interests()
  readonly #outbox: Outbox
  readonly #listening = new Map<string, Interest>()
  readonly #serving = new Map<string, Interest>()
  readonly #members = new Map<string, GroupMember>()
  #draining: Promise<void> | undefined
  /** Messages queued so far, and how many of them a round trip proved at the server. */
  #queued = 0
  #forwarded = 0
  /** Round trips in progress (they hold the process). */
  #rounds = 0
  #closing = false
  #closed = false
  readonly #holdTimer: NodeJS.Timeout

  constructor(options: ResolvedOptions, node: string, state: WireState, handlers: EngineHandlers) {
    const nats = loadTransport(options.url as string)
    this.#options = options
    this.#node = node
    this.#handlers = handlers
    this.#seqs = state.seqs
    this.stats = state.stats
    this.#gaps = state.gaps
    this.#inbound = new Inbound(state, handlers, replyPrefix(node), (signal) => this.#listening.has(signal))
    this.#outbox = new Outbox(nats, node, () => this.maxPayloadBytes, state.stats, (error) => handlers.error(error))
    this.#interests.subscribe(`${replyPrefix(node)}.*`, undefined, (msg) => this.#inbound.reply(msg))
    this.#dialer = new Dialer(nats, options, {
      connected: (nc) => this.#connected(nc),
      lost: (error) => {
        this.#handlers.error(error)
      },
      reconnected: (nc) => {
        this.stats.disconnects++
        this.#hold(nc)
        for (const member of this.#members.values()) member.connected?.()
      },
      held: () => this.#held()
    })
    this.#holdTimer = setInterval(() => this.#hold(), HOLD_CHECK_INTERVAL)
    this.#holdTimer.unref()
  }

  #connected(nc: NatsConnection): void {
    if (this.#closed) {
      void nc.close()
      return
    }
    this.#nc = nc
    this.#interests.attach(nc)
    this.#outbox.attach(nc)
    for (const member of this.#members.values()) member.connected?.()
    this.#hold()
    debug('connected to %s', nc.getServer())
  }

  /** Whether the process must stay alive for this connection: see hold.ts. */
  #held(): boolean {
    return !this.#closed && (this.#rounds > 0 || this.#closing || this.#handlers.demand() > 0)
  }

  #hold(nc = this.#nc): void {
    if (nc !== undefined) applyHold(nc, () => this.#held())
  }

  // ---- subscriptions ----

  subscribe(subject: string, queue: string | undefined, onMessage: (msg: WireMsg) => void): Interest {
    return this.#interests.subscribe(subject, queue, onMessage)
  }

  listen(signal: string): void {
    if (this.#listening.has(signal)) return
    this.#listening.set(signal, this.subscribe(signalFilter('e', signal), undefined, (msg) => this.#inbound.event(msg, signal)))
  }

  unlisten(signal: string): void {
    this.#listening.get(signal)?.unsubscribe()
    this.#listening.delete(signal)
    this.#gaps.forget(signal === '' ? undefined : signal)
  }

  /** Responders of a signal form one queue group across nodes: NATS hands each request to one of them. */
  serve(signal: string): void {
    if (this.#serving.has(signal)) return
    this.#serving.set(signal, this.subscribe(signalFilter('q', signal), 'responders', (msg) => this.#inbound.request(msg)))
  }

  unserve(signal: string): void {
    this.#serving.get(signal)?.unsubscribe()
    this.#serving.delete(signal)
  }

  // ---- receiving (inbound.ts) ----

  decode(msg: WireMsg, count = true): EventMessage | undefined {
    return this.#inbound.decode(msg, count)
  }

  deliver(message: EventMessage): void {
    this.#handlers.message(message)
  }

  deadLettered(): void {
    this.stats.deadLettered++
  }

  // ---- sending ----

  publish(signal: string, sender: string, json: string): Promise<void> {
    if (this.#closed) return RESOLVED
    this.stats.sent++
    this.#queued++
    this.#outbox.event(signal, sender, json, this.#nextSeq(signal))
    if (this.#outbox.unconfirmedChars < MAX_UNCONFIRMED_CHARS) return RESOLVED
    // Backpressure: wait for the server to have taken what was published so far.
    this.#draining ??= this.#roundTrip(this.#options.linger).then(() => {
      this.#draining = undefined
    })
    return this.#draining
  }

  #nextSeq(key: string): number {
    const seq = this.#seqs.get(key) ?? 0
    this.#seqs.set(key, seq + 1)
    return seq
  }

  request(signal: string, sender: string, json: string, id: string): void {
    if (this.#closed) return
    this.stats.sent++
    this.#queued++
    const seq = this.#nextSeq(requestTopic(signal))
    this.#outbox.send({
      subject: eventSubject('q', signal, sender),
      fields: eventHeaders(this.#node, seq, Date.now()),
      body: '[' + json + ']',
      reply: replySubject(this.#node, id),
      weight: 1
    })
  }

  /** `request` is the reply subject the request came with (the facade hands it back unchanged). */
  reply(_node: string, request: string, ok: boolean, json: string): void {
    this.#queued++
    this.#outbox.send({ subject: request, fields: replyHeaders(ok), body: '[' + json + ']', weight: 1 })
  }

  // ---- work groups ----

  joinGroup(membership: Membership): void {
    const member = this.#members.get(membership.topic)
    if (member !== undefined) {
      member.update(membership)
      return
    }
    if (membership.durable === undefined) this.#members.set(membership.topic, new QueueMember(membership, this))
    else this.#members.set(membership.topic, new DurableMember(membership, this, this.#options, () => this.#nc, this.#handlers))
  }

  finished(membership: Membership, receipt: string | undefined, error: unknown): void {
    this.#members.get(membership.topic)?.finished(receipt, error)
  }

  leaveGroup(membership: Membership): void {
    this.#members.get(membership.topic)?.leave()
    this.#members.delete(membership.topic)
  }

  async deadLetters(signal: string, group: string, count: number): Promise<DeadLetter[]> {
    // The node is ready (deadLetters() waits for that): a connection lost since is waited for again.
    const nc = await this.#dialer.connection(this.#options.readyTimeout)
    if (nc === undefined) throw new ConnectionLostError('nats', `deadLetters(): the connection to NATS broke, and was not made again within ${this.#options.readyTimeout} ms.`)
    return readDeadLetters(nc, this.#options, signal, group, count).catch((error: Error) => {
      throw jetStreamError(error, 'deadLetters()', 'failed')
    })
  }

  // ---- round trips ----

  /** A round trip to the server (PING/PONG): every SUB and PUB written before it was processed there. */
  async #roundTrip(timeout: number): Promise<boolean> {
    const deadline = Date.now() + timeout
    this.#rounds++
    this.#hold()
    try {
      while (!this.#closed) {
        const nc = await this.#dialer.connection(deadline - Date.now())
        if (nc === undefined || this.#closed) return false
        this.#hold()
        this.#outbox.seal()
        const unconfirmed = this.#outbox.unconfirmedChars
        const ok = await within(
          nc.flush().then(
            () => true,
            () => false
          ),
          deadline - Date.now(),
          false
        )
        if (ok) {
          this.#outbox.unconfirmedChars = Math.max(0, this.#outbox.unconfirmedChars - unconfirmed)
          return true
        }
        if (Date.now() >= deadline) return false
      }
      return false
    } finally {
      this.#rounds--
      this.#hold()
    }
  }

  /**
   * Proves a round trip to the server this node is connected to: its
   * subscriptions are live there and what it published was taken. Other
   * servers of a cluster learn the subscriptions a moment later (README, "NATS").
   */
  async probe(timeout: number): Promise<boolean> {
    if (this.#closed) return false
    const mark = this.#queued
    const start = Date.now()
    let ok = await this.#roundTrip(timeout)
    // A durable group is live once its stream and consumer exist: before, a 'now' group would miss events.
    // One that could not be set up (no JetStream) was reported through handlers.error: the server did answer.
    for (const member of this.#members.values()) {
      if (!ok || member.ready === undefined) continue
      ok = await within(member.ready().then(() => true), timeout - (Date.now() - start), false)
    }
    // Other servers of a cluster learn a subscription asynchronously, over their routes.
    const settle = this.#interests.subscribedAt + CLUSTER_SETTLE - Date.now()
    if (ok && settle > 0 && this.#nc?.info?.cluster !== undefined) {
      this.#rounds++
      await new Promise((resolve) => setTimeout(resolve, settle))
      this.#rounds--
    }
    if (ok) this.#forwarded = Math.max(this.#forwarded, mark)
    return ok
  }

  unsupported(): Error | undefined {
    for (const member of this.#members.values()) {
      const failure = member.unsupported?.()
      if (failure !== undefined) return failure
    }
    return undefined
  }

  /** Re-reads what holds the process (a listener or request was added). */
  startReceiving(): void {
    this.#hold()
  }

  get unflushed(): boolean {
    return this.#queued > this.#forwarded
  }

  get unflushedCount(): number {
    return this.#queued - this.#forwarded
  }

  get maxPayloadBytes(): number {
    const server = this.#nc?.info?.max_payload
    return Math.min(this.#options.maxMessageSize, server === undefined ? Infinity : server - HEADER_ROOM)
  }

  /** Drains (unsubscribes, hands over what arrived, flushes) when `flushed`, else closes at once. */
  async close(flushed: boolean): Promise<void> {
    if (this.#closed || this.#closing) return
    this.#closing = true
    this.#outbox.seal()
    clearInterval(this.#holdTimer)
    for (const member of this.#members.values()) member.leave()
    const nc = this.#nc
    this.#hold()
    try {
      if (nc !== undefined && flushed) await nc.drain().catch((error: Error) => debug('drain failed: %s', error.message))
    } finally {
      this.#closed = true
      this.#closing = false
      this.#interests.close()
      this.#outbox.close()
      this.#dialer.close()
      if (nc !== undefined && !nc.isClosed()) await nc.close().catch(() => undefined)
      debug('closed')
    }
  }
}
