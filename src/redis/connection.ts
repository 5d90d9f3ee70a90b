/**
 * A node's connection to Redis: a command connection (the {@link Outbox}), a
 * subscriber connection, and one blocking connection per durable group it is
 * in. Events go out as one Lua script call per batch (scripts.ts, SEND) and come
 * in on `pyvent:e:<signal>` channels (exact SUBSCRIBE per signal, one PSUBSCRIBE
 * for Any); requests, replies and work groups are described beside the code
 * that does them (requests here, groups.ts, durable.ts).
 *
 * @module
 */
import createDebug from 'debug'
import type { EventMessage } from '../codec'
import { requestTopic } from '../topics'
import type { ClientStats, Connection, DeadLetter, EngineHandlers, Membership, WireState } from '../engine'
import { ConnectionLostError } from '../errors'
import type { ResolvedOptions } from '../options'
import { DurableMember, readDeadLetters } from './durable'
import { MemberContext, PlainMember } from './groups'
import { Link, LinkHooks } from './link'
import { ClientOptions, loadRedis, maskUrl, RedisClient } from './load'
import { Outbox } from './outbox'
import { REQUEST, SEND } from './scripts'
import { Subscriptions } from './subscriptions'
import {
  channelSignal,
  decodeEvent,
  decodeReply,
  eventBody,
  eventHead,
  replyBody,
  replyChannel,
  requestList,
  requestWake,
  WireEvent
} from './wire'

const debug = createDebug('pyvent:redis:connection')

/** How often the connection re-reads whether it should keep the process alive (demand can drop without a call here). */
const REF_CHECK_MS = 50
/** Pause between two readiness round trips while the server does not answer. */
const PROBE_RETRY_MS = 20

/** The Redis engine's {@link Connection}. */
export class RedisConnection implements Connection {
  readonly #options: ResolvedOptions
  readonly #node: string
  readonly #handlers: EngineHandlers
  readonly #stats: ClientStats
  readonly #gaps: WireState['gaps']
  readonly #url: string
  readonly #make: (options: ClientOptions) => RedisClient
  readonly #pub: Link
  readonly #subscriptions: Subscriptions
  readonly #outbox: Outbox
  readonly #links = new Set<Link>()
  readonly #members = new Map<string, PlainMember | DurableMember>()
  #probing = 0
  /** Probes waiting: a refusal of the server ends them at once (it will not change by waiting). */
  readonly #refusals = new Set<() => void>()
  /** A probe has succeeded once. */
  #everReady = false
  #down = false
  readonly #timer: NodeJS.Timeout
  #closed = false

  constructor(options: ResolvedOptions, node: string, state: WireState, handlers: EngineHandlers) {
    this.#options = options
    this.#node = node
    this.#handlers = handlers
    this.#stats = state.stats
    this.#gaps = state.gaps
    this.#url = options.url as string
    this.#make = loadRedis(maskUrl(this.#url))
    this.#pub = this.link('cmd', {
      // Loaded first on each new client, so batches need no EVAL fallback on a fresh connection.
      created: (client) => [SEND, REQUEST].forEach((script) => void client.sendCommand(['SCRIPT', 'LOAD', script.source]).catch(() => undefined))
    })
    this.#subscriptions = new Subscriptions((opened) => this.link('sub', { opened }), (text, channel) => this.#deliverEvent(text, channel))
    this.#outbox = new Outbox(this.#pub, node, state.seqs, state.stats, options.maxStreamLength, () => this.#updateRef(), (error) => handlers.error(error))
    void this.#subscriptions.subscribe(replyChannel(node), this.#onReply)
    this.#updateRef()
    this.#timer = setInterval(() => this.#updateRef(), REF_CHECK_MS)
    this.#timer.unref()
    debug('connecting to %s', maskUrl(this.#url))
  }

  /** A new connection of this node (`hooks`: see {@link LinkHooks}). */
  link(role = 'group', hooks: Pick<LinkHooks, 'created' | 'opened'> = {}): Link {
    const link = new Link(this.#make, { url: this.#url, name: `pyvent-${role}-${this.#node}` }, {
      wanted: () => this.#wanted() || (role === 'group' && !this.#closed),
      lost: (cause) => this.#lost(cause),
      ready: () => this.#ready(link),
      refused: () => {
        // Before the node was ever ready only: later, a flush or stop waits out its linger as before.
        if (!this.#everReady) for (const wake of this.#refusals) wake()
      },
      ...hooks
    })
    this.#links.add(link)
    return link
  }

  // ---- events ----------------------------------------------------------------

  listen(signal: string): void {
    this.#subscriptions.listen(signal)
  }

  unlisten(signal: string): void {
    this.#subscriptions.unlisten(signal)
    this.#gaps.forget(signal === '' ? undefined : signal)
    this.#updateRef()
  }

  #deliverEvent(text: string, channel: string): void {
    const signal = channelSignal(channel)
    const event = signal === undefined ? undefined : decodeEvent(text)
    if (signal === undefined || event === undefined || event.request !== undefined) {
      this.malformed()
      return
    }
    const { sender, node, seq, time, payloads } = event
    this.#stats.received += payloads.length
    this.#gaps.record(signal, node, seq, payloads.length)
    this.#stats.gaps = this.#gaps.gaps
    this.#stats.duplicates = this.#gaps.duplicates
    this.#handlers.message({ kind: 'e', topic: signal, signal, sender, node, seq, time, payloads })
  }

  malformed(): void {
    this.#stats.malformed++
    debug('dropped a malformed message')
  }

  // ---- sending, requests and replies --------------------------------------

  publish(signal: string, sender: string, json: string): Promise<void> {
    const sent = this.#outbox.publish(signal, sender, json)
    this.#updateRef()
    return sent
  }

  /**
   * One script call queues the request on the signal's list and wakes its
   * responders; if none heard the wake-up it is taken back and answered here
   * with "no responders", at once.
   */
  request(signal: string, sender: string, json: string, id: string): void {
    if (this.#closed) return
    this.#stats.sent++
    const seq = this.#outbox.nextSeq(requestTopic(signal))
    const message = eventBody(eventHead(sender, this.#node, Date.now(), id), seq, [json])
    const send = (): Promise<void> =>
      this.#outbox.script(REQUEST, [requestList(signal), requestWake(signal)], [message], 1, 0, `a request on "${signal}"`).then((heard) => {
        if (heard !== 0 || this.#closed) return
        this.#handlers.message({
          kind: 'r',
          topic: replyChannel(this.#node),
          request: id,
          ok: false,
          value: { name: 'NoRespondersError', message: `No responder for "${signal}".` },
          noResponders: true
        })
      })
    const subscriber = this.#subscriptions.link
    // A subscriber connection given up (the server went away meanwhile), or being made
    // again, subscribes to the reply channel once ready: the request waits for that.
    if (subscriber.isReady) void send()
    else
      void subscriber
        .whenReady()
        .then(() => this.#subscriptions.settled())
        .then(send)
    this.#updateRef()
  }

  reply(node: string, request: string, ok: boolean, json: string): void {
    void this.#outbox.command(['PUBLISH', replyChannel(node), replyBody(request, ok, json)], 1, 'a reply to a request')
  }

  readonly #onReply = (text: string, channel: string): void => {
    const reply = decodeReply(text)
    if (reply === undefined) return this.malformed()
    this.#handlers.message({ kind: 'r', topic: channel, ...reply })
  }

  /** Every responder of the signal hears each wake-up and pops once: exactly one gets each request. */
  serve(signal: string): void {
    void this.#subscriptions.subscribe(requestWake(signal), () => void this.#takeRequest(signal))
  }

  unserve(signal: string): void {
    this.#subscriptions.unsubscribe(requestWake(signal))
    this.#updateRef()
  }

  async #takeRequest(signal: string): Promise<void> {
    const text = await this.#outbox.command(['LPOP', requestList(signal)])
    if (typeof text !== 'string' || this.#closed) return
    const event = decodeEvent(text)
    if (event?.request === undefined || event.payloads.length !== 1) return this.malformed()
    const message: EventMessage = { kind: 'q', topic: requestWake(signal), signal, ...event }
    this.#handlers.message(message)
  }

  // ---- work groups -----------------------------------------------------------

  joinGroup(membership: Membership): void {
    const member = this.#members.get(membership.topic)
    if (member !== undefined) return member.update(membership)
    const context = this.#memberContext()
    this.#members.set(membership.topic, membership.durable === undefined ? new PlainMember(context, membership) : new DurableMember(context, membership))
  }

  finished(membership: Membership, receipt: string | undefined, error: unknown): void {
    const member = this.#members.get(membership.topic)
    if (member instanceof DurableMember) member.finished(receipt, error)
    else member?.finished()
  }

  leaveGroup(membership: Membership): void {
    this.#members.get(membership.topic)?.leave()
    this.#members.delete(membership.topic)
    this.#updateRef()
  }

  deadLetters(signal: string, group: string, count: number): Promise<DeadLetter[]> {
    return readDeadLetters((args) => this.#outbox.ask(args), signal, group, count)
  }

  #memberContext(): MemberContext & ConstructorParameters<typeof DurableMember>[0] {
    return {
      outbox: this.#outbox,
      subscribe: (channel, listener) => this.#subscriptions.subscribe(channel, listener),
      unsubscribe: (channel) => this.#subscriptions.unsubscribe(channel),
      track: (promise) => void this.#subscriptions.track(promise),
      deliver: (membership, event, receipts, deliveries) => this.#deliverShare(membership, event, receipts, deliveries),
      malformed: () => this.malformed(),
      link: () => this.link(),
      consumer: this.#node,
      maxStreamLength: this.#options.maxStreamLength,
      deadLettered: (count) => {
        this.#stats.deadLettered += count
      }
    }
  }

  #deliverShare(membership: Membership, event: WireEvent, receipts?: string[], deliveries = 1): void {
    if (this.#closed) return
    const { sender, node, seq, time, payloads } = event
    this.#stats.received += payloads.length
    const message: EventMessage = { kind: 'e', topic: membership.topic, signal: membership.signal, group: membership.group, sender, node, seq, time, payloads }
    if (receipts !== undefined) {
      message.receipts = receipts
      message.deliveries = receipts.map(() => deliveries)
    }
    this.#handlers.message(message)
  }

  // ---- readiness, lifetime, failures ---------------------------------------

  /**
   * Waits for every subscription and group set-up made so far, then for a
   * PING on the command connection: Redis answers in order, so its reply also
   * proves everything queued before it was handled.
   */
  async probe(timeout: number): Promise<boolean> {
    if (this.#closed) return false
    this.#probing++
    this.#updateRef()
    const deadline = Date.now() + timeout
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeout)))
    let onRefusal: (() => void) | undefined
    const refused = new Promise<false>((resolve) => this.#refusals.add((onRefusal = () => resolve(false))))
    const proof = (async (): Promise<boolean> => {
      // Both connections ready (a server that refuses the password never gets here), then what was queued.
      await Promise.all([this.#pub.whenReady(), this.#subscriptions.link.whenReady()])
      await Promise.all([this.#subscriptions.settled(), this.#outbox.drained()])
      while (!this.#closed && Date.now() < deadline) {
        try {
          await this.#outbox.ask(['PING'])
          return true
        } catch {
          await new Promise((resolve) => setTimeout(resolve, PROBE_RETRY_MS))
        }
      }
      return false
    })()
    try {
      const ok = (await Promise.race([proof, expired, refused])) && !this.#closed
      if (ok) this.#everReady = true
      return ok
    } finally {
      clearTimeout(timer)
      this.#refusals.delete(onRefusal!)
      this.#probing--
      this.#updateRef()
    }
  }

  startReceiving(): void {
    this.#updateRef()
  }

  /** Whether the process must stay alive for this connection: something listens, waits, or is in flight. */
  #wanted(): boolean {
    if (this.#closed) return false
    return this.#handlers.demand() > 0 || this.#outbox.inflight > 0 || this.#outbox.filling || this.#probing > 0
  }

  #updateRef(): void {
    if (this.#closed) return
    const wanted = this.#wanted()
    this.#pub.reference(wanted)
    this.#subscriptions.link.reference(wanted)
  }

  #lost(cause: Error): void {
    if (this.#down || this.#closed) return
    this.#down = true
    this.#stats.disconnects++
    debug('connection lost: %s', cause.message)
    this.#handlers.error(
      new ConnectionLostError(
        'redis',
        `The connection to Redis at ${maskUrl(this.#url)} broke (${cause.message}): Redis restarted, the network failed, or Redis cut off a subscriber too slow for its client-output-buffer-limit. ` +
          'pyvent reconnects by itself; events published to plain listeners meanwhile are lost (stats().gaps counts those found missing), durable groups lose nothing.',
        { cause }
      )
    )
  }

  #ready(link: Link): void {
    if (link === this.#subscriptions.link) for (const member of this.#members.values()) if (member instanceof PlainMember) void member.register()
    if (this.#down && [...this.#links].every((each) => each.isReady || !each.exists)) {
      this.#down = false
      debug('connection restored')
    }
  }

  get unflushed(): boolean {
    return this.#outbox.queued > this.#outbox.settled
  }

  get unflushedCount(): number {
    return this.#outbox.queued - this.#outbox.settled
  }

  get maxPayloadBytes(): number {
    return this.#options.maxMessageSize
  }

  async close(flushed: boolean): Promise<void> {
    if (this.#closed) return
    // Members first: a durable member's last acknowledgements go out before the outbox closes.
    for (const member of this.#members.values()) member.leave()
    this.#members.clear()
    this.#outbox.close(flushed)
    this.#closed = true
    clearInterval(this.#timer)
    await Promise.all([...this.#links].map((link) => link.close(flushed && link === this.#pub)))
    debug('closed')
  }
}
