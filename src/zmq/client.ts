/**
 * The client sockets of a node: a Push connected to the relay's pull port and
 * a Subscriber connected to its publisher port. Events queued in the same
 * tick for the same signal and sender are coalesced into one ZeroMQ message,
 * so per-message costs are paid per batch.
 *
 * @module
 */
import { isMainThread } from 'node:worker_threads'
import createDebug from 'debug'
import { Push, Subscriber, XSubscriber } from 'zeromq'
import { decode, encodeControl, encodeEvents, encodeGroupState, encodeReply, EventMessage, Frames, GroupState } from '../codec'
import { GROUP_STATE_TOPIC, HEARTBEAT_TOPIC, replyTopic, requestTopic, responderTopic, topicFrame } from '../topics'
import type { ResolvedOptions } from '../options'
import type { ClientStats, Connection, EngineHandlers, Membership, WireState } from '../engine'
import { baseSocketOptions, endpoint, frameLimit, isEAGAIN } from './sockets'

const debug = createDebug('pyvent:client')

/** Most events coalesced into one message. */
const MAX_BATCH_EVENTS = 512
/** Most payload text (UTF-16 units) coalesced into one message, when maxMessageSize allows. */
const MAX_BATCH_CHARS = 16 * 1024
/**
 * Payload text (UTF-16 units) a client holds before the socket takes it; past
 * this, send() waits. Together with the socket high-water marks (in messages of
 * at most MAX_BATCH_CHARS) it bounds a sender's memory whatever the burst.
 */
const MAX_QUEUED_CHARS = 64 * 1024
/** ZeroMQ reconnect interval: short, so clients find a new relay soon after a failover. */
const RECONNECT_INTERVAL = 25
/** Longest pause between two probes of one readiness check. */
const MAX_PROBE_INTERVAL = 200
/** Longest pause between two looks at the socket of a client that polls (in a worker thread). */
const MAX_POLL_INTERVAL = 8
/** Messages a polling client takes in a row before it lets its thread's event loop run. */
const POLL_BATCH = 256

interface Batch {
  kind: 'e' | 'q'
  signal: string
  sender: string
  seq: number
  time: number
  request: string | undefined
  payloads: string[]
  /** Payload text plus one separator per payload, in UTF-16 units. */
  chars: number
}

const RESOLVED = Promise.resolve()
/** libzmq's option number of the send high-water mark. */
const ZMQ_SNDHWM = 23

const pause = (ms: number): Promise<void> => new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)))

/** The client half of a node on the ZeroMQ relay: its {@link Connection}. */
export class Client implements Connection {
  /** Counters, owned by the node so they outlive this client. */
  readonly stats: ClientStats
  readonly #options: ResolvedOptions
  readonly #node: string
  readonly #handlers: EngineHandlers
  readonly #push: Push
  readonly #sub: Subscriber
  /** The batch still being filled this tick. */
  #open: Batch | undefined
  /** Sealed messages waiting for the socket, oldest first. */
  readonly #queue: (Batch | Frames)[] = []
  #flushing = false
  #sealScheduled = false
  #waiters: (() => void)[] = []
  readonly #gaps: WireState['gaps']
  /**
   * Whether this client polls instead of leaving an operation pending. In a worker
   * thread a pending receive or send aborts the whole process when the thread is
   * torn down (zeromq.js issue 411), so there every receive and send is made
   * only when it can complete at once.
   */
  readonly #polling = !isMainThread
  /** This node's work-group reports (cumulative: only the latest of each matters), by member topic. */
  readonly #groupStates = new Map<string, GroupState>()
  readonly #groupDirty = new Set<string>()
  /** Carries group reports upstream to the relay's publisher, never queued behind events. */
  #stateSocket: XSubscriber | undefined
  #stateSending = false
  /** Reports to send on the data path at the end of this tick. */
  readonly #dataDirty = new Set<string>()
  #reportScheduled = false
  #stateTimer: NodeJS.Timeout | undefined
  /** Probes waiting to come back, by topic, oldest first (Map keeps insertion order). */
  readonly #probes = new Map<string, () => void>()
  /** Wakes every probe sleeping between two attempts (on close). */
  readonly #probeWakers = new Set<() => void>()
  #probeCount = 0
  /** Messages queued so far, and how many of them a returned probe proved forwarded. */
  #queued = 0
  #forwarded = 0
  /** Payload text waiting in #open and #queue. */
  #queuedChars = 0
  #receiving = false
  #closed = false

  /** Batch cap in UTF-16 units: a UTF-8 byte count is at most three times that, plus commas and brackets. */
  #batchChars: number
  /** The largest body the relay takes, once it has said so (in its heartbeats and probe answers). */
  #relayLimit: number | undefined
  /** Next sequence number per signal; owned by the node so it survives a restart. */
  readonly #seqs: Map<string, number>

  constructor(
    options: ResolvedOptions,
    node: string,
    state: WireState,
    handlers: EngineHandlers
  ) {
    this.#options = options
    this.#node = node
    this.#seqs = state.seqs
    this.stats = state.stats
    this.#gaps = state.gaps
    this.#handlers = handlers
    this.#batchChars = Math.min(MAX_BATCH_CHARS, Math.floor(options.maxMessageSize / 4))
    const hwm = options.highWaterMark
    const base = baseSocketOptions(options, 'client')
    this.#push = new Push({
      ...base,
      sendHighWaterMark: hwm,
      ...(this.#polling ? { sendTimeout: 0 } : {}),
      linger: options.linger,
      reconnectInterval: RECONNECT_INTERVAL
    })
    this.#sub = new Subscriber({
      ...base,
      receiveHighWaterMark: hwm,
      maxMessageSize: frameLimit(options),
      // A receive that sees nothing for this long means the relay is silent: see #receiveLoop.
      receiveTimeout: this.#polling ? 0 : options.relayTimeout,
      reconnectInterval: RECONNECT_INTERVAL,
      linger: 0
    })
    // Subscriptions travel to the relay as messages on the subscriber's outbound
    // queue, which ZeroMQ caps at 1,000 by default and then drops silently. No cap:
    // every subscription arrives, however many are made at once. (zeromq.js types
    // no send options on a Subscriber; the native option is there.)
    ;(this.#sub as unknown as { setInt32Option(option: number, value: number): void }).setInt32Option(ZMQ_SNDHWM, 0)
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
    return this.enqueue('e', signal, sender, json)
  }

  /** The relay hands it to one responder's topic, or answers "no responders". */
  request(signal: string, sender: string, json: string, id: string): void {
    void this.enqueue('q', requestTopic(signal), sender, json, id)
  }

  reply(node: string, request: string, ok: boolean, json: string): void {
    this.enqueueFrames(encodeReply(replyTopic(node), request, ok, json))
  }

  /** Subscribes to the member topic on joining; reports the room either way. */
  joinGroup(membership: Membership): void {
    if (!this.#groupStates.has(membership.topic)) this.subscribe(membership.topic)
    this.#reportGroup(membership)
  }

  finished(membership: Membership): void {
    this.#reportGroup(membership)
  }

  leaveGroup(membership: Membership): void {
    this.unsubscribe(membership.topic)
    this.#forgetGroup(membership.topic)
  }

  /**
   * Queues one encoded payload. Resolves at once while the queue is short;
   * when it is full, resolves once it has drained (backpressure).
   */
  enqueue(kind: 'e' | 'q', signal: string, sender: string, json: string, request?: string): Promise<void> {
    if (this.#closed) return RESOLVED
    this.stats.sent++
    this.#queued++
    this.#queuedChars += json.length
    const seq = this.#seqs.get(signal) ?? 0
    this.#seqs.set(signal, seq + 1)
    const open = this.#open
    if (
      open !== undefined &&
      kind === 'e' &&
      open.kind === 'e' &&
      open.signal === signal &&
      open.sender === sender &&
      open.payloads.length < MAX_BATCH_EVENTS &&
      open.chars + json.length + 1 <= this.#batchChars
    ) {
      open.payloads.push(json)
      open.chars += json.length + 1
    } else {
      if (open !== undefined) this.#seal()
      this.#open = { kind, signal, sender, seq, time: Date.now(), request, payloads: [json], chars: json.length + 1 }
      if (kind === 'q') this.#seal()
      else if (!this.#sealScheduled) {
        this.#sealScheduled = true
        setImmediate(this.#sealTick)
      }
    }
    if (this.#queuedChars < MAX_QUEUED_CHARS) return RESOLVED
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** Queues ready-made frames (replies, probes) behind everything queued before. */
  enqueueFrames(frames: Frames, control = false): void {
    if (this.#closed) return
    if (!control) this.#queued++
    if (this.#open !== undefined) this.#seal()
    this.#queue.push(frames)
    void this.#flush()
  }

  readonly #sealTick = (): void => {
    this.#sealScheduled = false
    if (this.#open !== undefined) this.#seal()
  }

  #seal(): void {
    const open = this.#open
    if (open === undefined) return
    this.#open = undefined
    this.#queue.push(open)
    void this.#flush()
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return
    this.#flushing = true
    const queue = this.#queue
    try {
      while (queue.length > 0 && !this.#closed) {
        const item = queue[0] as Batch | Frames
        const frames = Array.isArray(item) ? item : encodeEvents(topicFrame(item.signal), item, this.#node, item.payloads)
        for (let wait = 0; ; wait = Math.min(wait + 1, MAX_POLL_INTERVAL)) {
          try {
            await this.#push.send(frames)
            break
          } catch (error) {
            // A polling client's socket is full: wait, then try again.
            if (!this.#polling || !isEAGAIN(error) || this.#closed) throw error
            await pause(wait)
          }
        }
        if (!Array.isArray(item)) this.#queuedChars -= item.chars - item.payloads.length
        queue.shift()
        if (this.#waiters.length > 0 && this.#queuedChars < MAX_QUEUED_CHARS / 2) this.#wake()
      }
    } catch (error) {
      if (!this.#closed) debug('send failed: %s', (error as Error).message)
    } finally {
      this.#flushing = false
    }
    if (this.#waiters.length > 0 && (this.#queuedChars < MAX_QUEUED_CHARS / 2 || this.#closed)) this.#wake()
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve()
  }

  /**
   * Proves a round trip through the relay: subscribes to a fresh probe topic,
   * then sends probes to it until one comes back. Because subscriptions travel
   * in order on one connection, the returning probe also proves every earlier
   * subscription is live at the relay; because the probe is queued behind
   * every earlier event, it also proves those were forwarded.
   *
   * @returns `true` if a probe came back within `timeout` milliseconds.
   */
  async probe(timeout: number): Promise<boolean> {
    if (this.#closed) return false
    const topic = `$p.${this.#node}.${++this.#probeCount}`
    const mark = this.#queued
    const frames = encodeControl('p', topic)
    let arrived = false
    let wake: (() => void) | undefined
    this.#probes.set(topic, () => {
      arrived = true
      this.#forwarded = Math.max(this.#forwarded, mark)
      wake?.()
    })
    this.subscribe(topic)
    this.startReceiving()
    const deadline = Date.now() + timeout
    let interval = 5
    try {
      while (!arrived && !this.#closed) {
        const left = deadline - Date.now()
        if (left <= 0) break
        this.enqueueFrames(frames, true)
        let timer: NodeJS.Timeout | undefined
        await new Promise<void>((resolve) => {
          wake = resolve
          this.#probeWakers.add(resolve)
          timer = setTimeout(resolve, Math.min(interval, left))
        })
        clearTimeout(timer)
        if (wake !== undefined) this.#probeWakers.delete(wake)
        interval = Math.min(interval * 2, MAX_PROBE_INTERVAL)
      }
    } finally {
      this.#probes.delete(topic)
      this.unsubscribe(topic)
    }
    return arrived
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
    sub.subscribe(topicFrame(HEARTBEAT_TOPIC))
    let heard = Date.now()
    let idle = 0
    let taken = 0
    while (this.#wanted()) {
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
      this.#handle(frames)
    }
    if (!this.#closed) sub.unsubscribe(topicFrame(HEARTBEAT_TOPIC))
    this.#receiving = false
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
        if (message.topic.startsWith('$s')) this.#handlers.message(message)
        return
      case 'r':
        this.#handlers.message(message)
        return
      case 'p':
        this.#learnLimit(message.limit)
        // A probe that comes back also proves every older probe's point (their
        // subscriptions were made earlier on the same connection): settle those too.
        if (!this.#probes.has(message.topic)) return
        for (const [topic, arrived] of this.#probes) {
          arrived()
          if (topic === message.topic) break
        }
        return
      case 'h':
        this.#learnLimit(message.limit)
        return
    }
  }

  #learnLimit(limit: number | undefined): void {
    if (limit === undefined || limit === this.#relayLimit) return
    this.#relayLimit = limit
    this.#batchChars = Math.min(MAX_BATCH_CHARS, Math.floor(this.maxPayloadBytes / 4))
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

  /**
   * Tells the relay how much room this node has as a member of a work group.
   * Sent twice: on the data path, where a later probe proves it arrived, and
   * upstream on a socket of its own, where it never waits behind events (a relay
   * holding back events for lack of room must still hear it); and again every
   * relayTimeout, so a new relay hears it too. Reports are cumulative, so the
   * relay takes the newest and ignores the rest.
   */
  #reportGroup(state: GroupState): void {
    if (this.#closed) return
    const joining = !this.#groupStates.has(state.topic)
    this.#groupStates.set(state.topic, { ...state })
    this.#groupDirty.add(state.topic)
    // On joining, at once behind everything queued on the data path: a readiness probe
    // sent after this proves the relay has it (the upstream socket may not be connected yet).
    if (joining) this.#enqueueReport(state.topic)
    else this.#dataDirty.add(state.topic)
    // Later reports are cumulative: one per tick carries every event finished in it.
    if (!this.#reportScheduled) {
      this.#reportScheduled = true
      setImmediate(this.#flushReports)
    }
    if (this.#stateSocket === undefined) {
      this.#stateSocket = new XSubscriber({
        ...baseSocketOptions(this.#options, 'client'),
        sendHighWaterMark: 0,
        ...(this.#polling ? { sendTimeout: 0 } : {}),
        reconnectInterval: RECONNECT_INTERVAL,
        linger: 0
      })
      this.#stateSocket.connect(endpoint(this.#options, 'pub'))
      this.#stateTimer = setInterval(() => {
        for (const topic of this.#groupStates.keys()) this.#groupDirty.add(topic)
        void this.#sendGroupStates()
      }, this.#options.relayTimeout)
      this.#stateTimer.unref()
    }
  }

  readonly #flushReports = (): void => {
    this.#reportScheduled = false
    for (const topic of this.#dataDirty) this.#enqueueReport(topic)
    this.#dataDirty.clear()
    void this.#sendGroupStates()
  }

  #enqueueReport(topic: string): void {
    const state = this.#groupStates.get(topic)
    if (state !== undefined) this.enqueueFrames([topicFrame(GROUP_STATE_TOPIC), encodeGroupState(state), '[]'], true)
  }

  /** This node left a work group: no more reports for it. */
  #forgetGroup(topic: string): void {
    this.#groupStates.delete(topic)
    this.#groupDirty.delete(topic)
    this.#dataDirty.delete(topic)
  }

  async #sendGroupStates(): Promise<void> {
    const socket = this.#stateSocket
    if (this.#stateSending || socket === undefined) return
    this.#stateSending = true
    try {
      for (const topic of this.#groupDirty) {
        this.#groupDirty.delete(topic)
        const state = this.#groupStates.get(topic)
        if (state === undefined) continue
        for (let wait = 1; ; wait = Math.min(wait * 2, MAX_POLL_INTERVAL)) {
          try {
            await socket.send(encodeGroupState(state))
            break
          } catch (error) {
            if (!this.#polling || !isEAGAIN(error) || this.#closed) throw error
            await pause(wait)
          }
        }
      }
    } catch (error) {
      if (!this.#closed) debug('group report failed: %s', (error as Error).message)
    } finally {
      this.#stateSending = false
    }
  }

  /** Whether something was queued that no returned probe has proved forwarded yet. */
  get unflushed(): boolean {
    return this.#queued > this.#forwarded
  }

  /** How many events and replies were queued that no returned probe has proved forwarded yet. */
  get unflushedCount(): number {
    return this.#queued - this.#forwarded
  }

  /**
   * Closes both sockets. With `flushed` false (the relay did not answer), queued
   * messages are dropped at once instead of holding the process for `linger`.
   */
  close(flushed: boolean): void {
    if (this.#closed) return
    this.#closed = true
    if (!flushed) this.#push.linger = 0
    this.#push.close()
    this.#sub.close()
    clearInterval(this.#stateTimer)
    this.#stateSocket?.close()
    this.#wake()
    for (const wake of this.#probeWakers) wake()
    debug('closed')
  }
}
