/**
 * The client sockets of a node: a Push connected to the relay's pull port and
 * a Subscriber connected to its publisher port, and the receive loop. What it
 * sends waits in its outbox (outbox.ts, batching and backpressure); its
 * readiness probes are in probes.ts, its work-group reports go out through
 * group-reports.ts.
 *
 * @module
 */
import { isMainThread } from 'node:worker_threads'
import createDebug from 'debug'
import type { Push, Subscriber } from 'zeromq'
import { decode, encodeReply, EventMessage } from '../codec'
import { HEARTBEAT_TOPIC, isResponderTopic, replyTopic, requestTopic, responderTopic, topicFrame } from '../topics'
import type { ResolvedOptions } from '../options'
import type { ClientStats, Connection, EngineHandlers, Membership, WireState } from '../engine'
import { GroupReports } from './group-reports'
import { Outbox } from './outbox'
import { Probes } from './probes'
import { QuietProof } from './quiet-proof'
import { endpoint, isEAGAIN, MAX_POLL_INTERVAL, pause, pushSocket, sendFrames, subscriberSocket } from './sockets'

const debug = createDebug('pyvent:client')

/** Messages a polling client takes in a row before it lets its thread's event loop run. */
const POLL_BATCH = 256
/**
 * Messages a client takes in a row before it lets its event loop turn. While
 * messages wait, each receive settles at once, and Node frees the ZeroMQ
 * message under a received Buffer only in a later turn (as an immediate): a
 * loop that never yields holds every message of a burst, and starves timers.
 */
export const RECEIVE_BATCH = 32
/** Requests remembered for the proof their reply brings (see `#requestMarks`). */
const MAX_REQUEST_MARKS = 10_000

/** The client half of a node on the ZeroMQ relay: its {@link Connection}. */
export class Client implements Connection {
  /** Counters, owned by the node so they outlive this client. */
  readonly stats: ClientStats
  readonly #options: ResolvedOptions
  readonly #node: string
  readonly #handlers: EngineHandlers
  readonly #push: Push
  readonly #sub: Subscriber
  readonly #outbox: Outbox
  readonly #reports: GroupReports
  readonly #gaps: WireState['gaps']
  /**
   * Whether this client polls instead of leaving an operation pending. In a worker
   * thread a pending receive or send aborts the whole process when the thread is
   * torn down (zeromq.js issue 411), so there every receive and send is made
   * only when it can complete at once.
   */
  readonly #polling = !isMainThread
  readonly #probes: Probes
  /** Proves what the node sent once it goes quiet, so a later exit does not warn about it. */
  readonly #quiet: QuietProof
  /**
   * Requests waiting for their reply, with the count of messages queued up to
   * them: a reply proves its request, and everything queued before it, forwarded.
   */
  readonly #requestMarks = new Map<string, number>()
  #receiving = false
  /**
   * The heartbeat unsubscription of a receive loop that just ended, held back one
   * turn of the event loop: a loop that starts again before it runs (the next
   * request of a caller that makes them one after another) keeps the subscription
   * instead of sending the relay an unsubscription and a subscription per request.
   */
  #heartbeatDrop: NodeJS.Immediate | undefined
  #closed = false

  /** The largest body the relay takes, once it has said so (in its heartbeats and probe answers). */
  #relayLimit: number | undefined

  constructor(
    options: ResolvedOptions,
    node: string,
    state: WireState,
    handlers: EngineHandlers
  ) {
    this.#options = options
    this.#node = node
    this.stats = state.stats
    this.#gaps = state.gaps
    this.#handlers = handlers
    const polling = this.#polling
    const push = (this.#push = pushSocket(options, polling))
    this.#sub = subscriberSocket(options, polling)
    const closed = (): boolean => this.#closed
    this.#outbox = new Outbox({
      node,
      seqs: state.seqs,
      stats: state.stats,
      maxPayloadBytes: options.maxMessageSize,
      send: (frames) => sendFrames(push, frames, polling, closed),
      heard: () => this.#heard()
    })
    this.#probes = new Probes({
      node,
      subscribe: (topic) => this.subscribe(topic),
      unsubscribe: (topic) => this.unsubscribe(topic),
      send: (frames) => this.#outbox.enqueueFrames(frames, true),
      trySend: (frames) => {
        if (this.#outbox.idle && this.#push.writable) this.#outbox.enqueueFrames(frames, true)
      },
      queued: () => this.#outbox.queued,
      listen: () => this.startReceiving(),
      look: () => this.#heard(),
      closed
    })
    this.#quiet = new QuietProof({
      queued: () => this.#outbox.queued,
      forwarded: () => this.#probes.forwarded,
      probe: (timeout) => this.#probes.probe(timeout, true),
      closed
    })
    this.#reports = new GroupReports({ options, polling, enqueue: (frames) => this.#outbox.enqueueFrames(frames, true) })
    this.#push.connect(endpoint(options, 'pull'))
    this.#sub.connect(endpoint(options, 'pub'))
    this.subscribe(replyTopic(node))
    debug('connected to %s / %s', endpoint(options, 'pub'), endpoint(options, 'pull'))
  }

  /** Subscribes to a topic ('' for every topic). */
  subscribe(topic: string): void {
    if (this.#closed) return
    this.#sub.subscribe(topic === '' ? '' : topicFrame(topic))
  }

  /** Drops a subscription made with {@link subscribe}. */
  unsubscribe(topic: string): void {
    if (this.#closed) return
    this.#sub.unsubscribe(topic === '' ? '' : topicFrame(topic))
    this.#gaps.forget(topic === '' ? undefined : topic)
  }

  listen(signal: string): void {
    this.subscribe(signal)
  }

  unlisten(signal: string): void {
    this.unsubscribe(signal)
  }

  serve(signal: string): void {
    this.subscribe(responderTopic(signal, this.#node))
  }

  unserve(signal: string): void {
    this.unsubscribe(responderTopic(signal, this.#node))
  }

  publish(signal: string, sender: string, json: string): Promise<void> {
    this.#quiet.sent()
    return this.#outbox.enqueue('e', signal, sender, json)
  }

  /** The relay hands it to one responder's topic, or answers "no responders". */
  request(signal: string, sender: string, json: string, id: string): void {
    this.#quiet.sent()
    void this.#outbox.enqueue('q', requestTopic(signal), sender, json, id)
    // Bounded: a request that never gets its reply (timed out) is forgotten in turn.
    if (this.#requestMarks.size >= MAX_REQUEST_MARKS) this.#requestMarks.delete(this.#requestMarks.keys().next().value as string)
    this.#requestMarks.set(id, this.#outbox.queued)
  }

  reply(node: string, request: string, ok: boolean, json: string): void {
    this.#quiet.sent()
    this.#outbox.enqueueFrames(encodeReply(replyTopic(node), request, ok, json))
  }

  /** Subscribes to the member topic on joining; reports the room either way. */
  joinGroup(membership: Membership): void {
    if (!this.#reports.has(membership.topic)) this.subscribe(membership.topic)
    this.#reports.report(membership)
  }

  finished(membership: Membership): void {
    this.#reports.report(membership)
  }

  leaveGroup(membership: Membership): void {
    this.unsubscribe(membership.topic)
    this.#reports.forget(membership.topic)
  }

  /**
   * Proves a round trip through the relay (see probes.ts): every earlier
   * subscription is live there, every earlier message forwarded.
   *
   * @returns `true` if a probe came back within `timeout` milliseconds.
   */
  probe(timeout: number): Promise<boolean> {
    return this.#probes.probe(timeout)
  }

  /** Starts the receive loop if something needs it and it is not running. */
  startReceiving(): void {
    if (this.#receiving || this.#closed) return
    this.#receiving = true
    void this.#receiveLoop()
  }

  #wanted(): boolean {
    return !this.#closed && (this.#handlers.demand() > 0 || this.#probes.size > 0)
  }

  // A pending receive keeps the process alive, so the loop runs only while a
  // listener, wait, request or probe needs it. The receive timeout (the
  // detection window) both bounds how long a finished loop lingers and tells
  // that the relay has gone silent: it sends a heartbeat every heartbeatInterval.
  async #receiveLoop(): Promise<void> {
    const sub = this.#sub
    // Heartbeats only while reading: a node that does not read must not let them
    // pile up in its queue, or a lossless relay would end up waiting for it.
    if (this.#heartbeatDrop !== undefined) {
      clearImmediate(this.#heartbeatDrop)
      this.#heartbeatDrop = undefined
    } else sub.subscribe(topicFrame(HEARTBEAT_TOPIC))
    let heard = Date.now()
    let idle = 0
    let taken = 0
    let inARow = 0
    while (this.#wanted()) {
      if (inARow >= RECEIVE_BATCH) {
        inARow = 0
        await pause(0)
        continue
      }
      if (this.#polling) {
        // Never a receive pending in a worker thread: look, and wait a little if there is nothing.
        if (taken >= POLL_BATCH || !sub.readable) {
          if (taken < POLL_BATCH) idle = Math.min(idle + 1, MAX_POLL_INTERVAL)
          taken = 0
          if (Date.now() - heard > this.#options.relayTimeout) {
            heard = Date.now()
            this.#silent()
          }
          await pause(idle)
          continue
        }
        idle = 0
        taken++
      }
      let frames: Buffer[]
      try {
        frames = await sub.receive()
      } catch (error) {
        if (this.#closed) break
        if (isEAGAIN(error)) {
          if (!this.#polling) this.#silent()
        } else debug('receive failed: %s', (error as Error).message)
        continue
      }
      heard = Date.now()
      inARow++
      this.#handle(frames)
    }
    if (!this.#closed) this.#heartbeatDrop = setImmediate(this.#dropHeartbeat)
    this.#receiving = false
  }

  /**
   * Reads what waits on the subscriber when no receive loop does: a node that
   * only sends has no loop, and still hears the relay's flow control (on its
   * reply topic, subscribed from the start). A look at `readable` costs one
   * socket option read, so it runs after every message sent. Never while the
   * receive loop runs: reading the socket's events would swallow the wake-up
   * its pending receive waits for (work-group deals then waited, members sat
   * idle). That loop reads once the event loop turns, which the outbox makes
   * sure of.
   */
  #heard(): void {
    if (this.#receiving || this.#closed || !this.#sub.readable) return
    this.#receiving = true
    void this.#readWaiting()
  }

  async #readWaiting(): Promise<void> {
    try {
      while (!this.#closed && this.#sub.readable) this.#handle(await this.#sub.receive())
    } catch (error) {
      if (!this.#closed && !isEAGAIN(error)) debug('receive failed: %s', (error as Error).message)
    } finally {
      this.#receiving = false
      if (this.#wanted()) this.startReceiving()
    }
  }

  readonly #dropHeartbeat = (): void => {
    this.#heartbeatDrop = undefined
    if (!this.#closed) this.#sub.unsubscribe(topicFrame(HEARTBEAT_TOPIC))
  }

  #silent(): void {
    debug('nothing from the relay for %d ms', this.#options.relayTimeout)
    this.#handlers.suspect()
  }

  #handle(frames: Buffer[]): void {
    let message
    try {
      message = decode(frames)
    } catch (error) {
      this.stats.malformed++
      debug('dropped a malformed message: %s', (error as Error).message)
      return
    }
    switch (message.kind) {
      case 'e':
        this.stats.received += message.payloads.length
        // A group member sees only its share of the sender's stream: no gaps to count there.
        if (message.group === undefined) this.#track(message)
        this.#handlers.message(message)
        return
      case 'q':
        // A request the relay handed to one of this node's responders (on its $s topic):
        // not an event, and each responder sees only a share.
        if (isResponderTopic(message.topic)) this.#handlers.message(message)
        return
      case 'r': {
        const mark = this.#requestMarks.get(message.request)
        if (mark !== undefined) {
          this.#requestMarks.delete(message.request)
          this.#probes.proved(mark)
        }
        this.#handlers.message(message)
        return
      }
      case 'p':
        this.#learnRelay(message)
        this.#probes.arrived(message.topic)
        return
      case 'h':
        this.#learnRelay(message)
        return
      case 'x':
        this.#outbox.hold(message.hold)
        return
    }
  }

  /** What the relay announces in its probe answers and heartbeats: its body limit, and whether it drops. */
  #learnRelay({ limit, drop }: { limit?: number; drop?: boolean }): void {
    this.#outbox.markStreams(drop === true)
    if (limit === undefined || limit === this.#relayLimit) return
    this.#relayLimit = limit
    this.#outbox.setBodyLimit(this.maxPayloadBytes)
    debug('the relay takes bodies of up to %d bytes', limit)
  }

  /** The largest body this node may send: its own maxMessageSize, or the relay's if smaller. */
  get maxPayloadBytes(): number {
    return Math.min(this.#options.maxMessageSize, this.#relayLimit ?? Infinity)
  }

  #track(message: EventMessage): void {
    this.#gaps.record(message.signal, message.node, message.seq, message.payloads.length)
    this.stats.gaps = this.#gaps.gaps
    this.stats.duplicates = this.#gaps.duplicates
  }

  /** Whether something was queued that no returned probe or reply has proved forwarded yet. */
  get unflushed(): boolean {
    return this.#outbox.queued > this.#probes.forwarded
  }

  /** How many events, requests and replies were queued that no returned probe or reply has proved forwarded yet. */
  get unflushedCount(): number {
    return this.#outbox.queued - this.#probes.forwarded
  }

  /**
   * Closes both sockets. With `flushed` false (the relay did not answer), queued
   * messages are dropped at once instead of holding the process for `linger`.
   */
  close(flushed: boolean): void {
    if (this.#closed) return
    this.#closed = true
    this.#quiet.close()
    clearImmediate(this.#heartbeatDrop)
    this.#heartbeatDrop = undefined
    if (!flushed) this.#push.linger = 0
    this.#push.close()
    this.#sub.close()
    this.#reports.close()
    this.#outbox.close()
    this.#probes.close()
    debug('closed')
  }
}
