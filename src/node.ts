/**
 * The node: one client, a relay it may host, and the local dispatcher, with
 * the lifecycle that ties them together (lazy start, relay election and
 * takeover, readiness, flush at exit, stop).
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import { writeSync } from 'node:fs'
import { isMainThread } from 'node:worker_threads'
import createDebug from 'debug'
import { v4 as uuidv4 } from 'uuid'
import { Connection, DeadLetter, DurableSettings, emptyClientStats, Engine, Membership, RelayHosting } from './engine'
import { engineFor, warnIgnored } from './engines'
import { MethodDecorator, methodDecorator } from './decorators'
import { GapTracker } from './sequence'
import type { EventMessage, ReplyMessage } from './codec'
import { checkBodySize, checkName, encodePayload } from './payload'
import { groupTopic, MAX_TOPIC_BYTES } from './topics'
import { Dispatcher, isThenable, Listener, ListenOptions, PyventEvent } from './dispatcher'
import { AbortError, ListenerError, NoRespondersError, RelayUnreachableError, RemoteError, StoppedError, TimeoutError, UnsupportedError } from './errors'
import { RequestBook, Responder } from './requests'
import { NodeOptions, ResolvedOptions, resolveOptions } from './options'
import { checkTimeout, Waiter } from './waiter'
import type { RelayStats } from './zmq/relay-types'
import { Any, AnySignal, Payload, Signal, SignalRef, signalName } from './signal'

import type { EmitOptions, EmitsDecorator, NodeEventMap, NodeStats, RequestOptions, SendOptions, WaitOptions } from './node-types'

const debug = createDebug('pyvent:node')

/**
 * A new relay waits this long after binding before it forwards anything, so
 * that clients already waiting for a relay (after a failover, or started before
 * any relay) reconnect and resubscribe before the events they queued pass by.
 */
const RELAY_HOLD = 50
/** The sender filter of a listener that names none: events from `pyvent` and `pyvent.*`. */
export const DEFAULT_FILTER = 'pyvent'

type State = 'idle' | 'starting' | 'started' | 'stopping'

// Nodes to flush when the process has nothing else to do (see Node#idle), and
// to account for when it exits.
const started = new Set<Node>()
let exitHookInstalled = false
function onBeforeExit(): void {
  for (const node of started) node.idle()
}
function onExit(): void {
  let lost = 0
  for (const node of started) lost += node.unflushed()
  if (lost === 0) return
  // Synchronous, and straight to the file descriptor: this is the process's last moment.
  try {
    writeSync(
      2,
      `pyvent: ${lost} event${lost === 1 ? '' : 's'} sent by this ${threadKind()} may be lost: it exited before the relay confirmed ${lost === 1 ? 'it' : 'them'}. ` +
        'Call `await pyvent.flush()` (or `await pyvent.stop()`) before process.exit().\n'
    )
  } catch {
    // stderr is closed: nothing left to tell.
  }
}
function threadKind(): string {
  return isMainThread ? 'process' : 'worker thread'
}

/**
 * A pyvent node: sends events, delivers them to local listeners, and may host
 * the relay that every node on the port talks through.
 *
 * @example
 * ```ts
 * const node = new Node({ port: 50100 })
 * node.connect('order-food', ({ food }) => console.log(food))
 * await node.ready()
 * await node.send('order-food', { food: 'sushi' })
 * await node.stop()
 * ```
 */
export class Node extends EventEmitter<NodeEventMap> {
  readonly #options: ResolvedOptions
  /** This node's unique id on the wire. */
  readonly nodeId: string = uuidv4()
  readonly #defaultSender: string
  readonly #dispatcher: Dispatcher
  readonly #engine: Engine
  /** The relay this node may host (the ZeroMQ engine only). */
  readonly #relay: RelayHosting<RelayStats> | undefined
  /** Pending requests and this node's responders. */
  readonly #requests: RequestBook
  /** This node's work-group memberships, by group topic: capacity and events finished. */
  readonly #groups = new Map<string, Membership>()
  /** Every pending waitFor and request: stop() rejects them. */
  readonly #waiters = new Set<{ reject(error: Error): void }>()
  /** Sequence numbers, counters and gap tracking: kept across restarts, so event ids never repeat and stats() adds up. */
  readonly #wire = { seqs: new Map<string, number>(), stats: emptyClientStats(), gaps: new GapTracker() }
  /** Sends waiting for the node's first readiness (not yet in the client's queue). */
  #waitingSends = 0
  /** A readiness started for listeners in the background, reported once if it fails. */
  #activation: Promise<void> | undefined
  /** The relay's counters when this node last stopped hosting it. */
  #lastRelay: RelayStats | undefined
  #state: State = 'idle'
  #starting: Promise<void> | undefined
  #stopping: Promise<boolean> | undefined
  #firstReady: Promise<void> | undefined
  #ready = false
  #client: Connection | undefined
  /** An attempt to host the relay in progress (start, startServer or takeover). */
  #hosting: Promise<boolean> | undefined

  constructor(options: NodeOptions = {}) {
    super()
    this.#options = resolveOptions(options)
    this.#engine = engineFor(this.#options)
    warnIgnored(this.#engine, options)
    this.#relay = this.#engine.relay() as RelayHosting<RelayStats> | undefined
    this.#defaultSender = this.#options.id === 'pyvent' ? 'pyvent' : `pyvent.${this.#options.id}`
    this.#dispatcher = new Dispatcher({
      // A group member's topic is joined and left through the group calls.
      subscribe: (topic) => {
        if (!this.#groups.has(topic)) this.#client?.listen(topic)
      },
      unsubscribe: (topic) => {
        const membership = this.#groups.get(topic)
        if (membership === undefined) this.#client?.unlisten(topic)
        else {
          this.#groups.delete(topic)
          this.#client?.leaveGroup(membership)
        }
      },
      error: (error) => this.#report(error),
      finished: (topic, receipt, error) => {
        const membership = this.#groups.get(topic)
        if (membership === undefined) return
        membership.done++
        this.#client?.finished(membership, receipt, error)
      }
    })
    this.#requests = new RequestBook(
      this.nodeId,
      {
        serve: (signal) => this.#client?.serve(signal),
        unserve: (signal) => this.#client?.unserve(signal),
        reply: (node, request, ok, json) => this.#client?.reply(node, request, ok, json)
      },
      this.#options.maxMessageSize
    )
    this.#relay?.on('lost', () => {
      this.emit('relay', false)
      this.#takeOver()
    })
  }

  /** The options in force, with defaults and environment overrides applied. */
  get options(): Readonly<ResolvedOptions> {
    return this.#options
  }

  /** The sender name of this node's events when `send` is given none. */
  get defaultSender(): string {
    return this.#defaultSender
  }

  /** Whether this node has started (and not stopped since). */
  isStarted(): boolean {
    return this.#state !== 'idle'
  }

  /** Whether this node hosts the relay right now. */
  isServer(): boolean {
    return this.#relay?.running === true
  }

  /**
   * Starts the node if needed and tries to host the relay now (Pyvent's
   * `start_server`), even when the `server` option is false: this is an
   * explicit request. Resolves `true` if this node hosts the relay.
   */
  async startServer(): Promise<boolean> {
    await this.#start()
    return this.#host()
  }

  /**
   * Tries to bind the relay, once at a time. A node that stopped while the
   * relay was binding releases it at once: stop() promises free ports.
   */
  #host(): Promise<boolean> {
    const relay = this.#relay
    if (relay === undefined) return Promise.resolve(false)
    if (relay.running) return Promise.resolve(true)
    this.#hosting ??= relay
      .start(this.#options, RELAY_HOLD)
      .then(async (hosting) => {
        if (!hosting) return false
        if (this.#state !== 'started' && this.#state !== 'starting') {
          await relay.stop()
          return false
        }
        debug('hosting the relay on port %d', this.#options.port)
        this.emit('relay', true)
        return true
      })
      .finally(() => {
        this.#hosting = undefined
      })
    return this.#hosting
  }

  #start(): Promise<void> {
    if (this.#state === 'started') return Promise.resolve()
    if (this.#state === 'stopping') {
      return (this.#stopping ?? Promise.resolve()).then(() => this.#start())
    }
    this.#starting ??= this.#boot().finally(() => {
      this.#starting = undefined
    })
    return this.#starting
  }

  async #boot(): Promise<void> {
    this.#state = 'starting'
    try {
      if (this.#options.server) await this.#host()
    } catch (error) {
      this.#state = 'idle'
      throw error
    }
    const client = this.#engine.connect(this.#options, this.nodeId, this.#wire, {
      message: (message) => this.#onMessage(message),
      suspect: () => this.#takeOver(),
      error: (error) => this.#report(error),
      demand: () => this.#dispatcher.size + this.#requests.size
    })
    for (const signal of this.#requests.signals()) client.serve(signal)
    for (const membership of this.#groups.values()) client.joinGroup(membership)
    for (const topic of this.#dispatcher.topics()) if (!this.#groups.has(topic)) client.listen(topic)
    this.#client = client
    this.#state = 'started'
    started.add(this)
    if (!exitHookInstalled) {
      exitHookInstalled = true
      process.on('beforeExit', onBeforeExit)
      process.on('exit', onExit)
    }
    if (this.#dispatcher.size > 0) client.startReceiving()
    debug('started (node %s, %s)', this.nodeId, this.isServer() ? 'relay' : this.#engine.name)
  }

  /** The relay looks gone: if this node may serve, try to take it over. */
  #takeOver(): void {
    if (!this.#options.server || this.#relay === undefined || this.#relay.running || this.#hosting !== undefined || this.#state !== 'started') return
    this.#host().then(
      (hosting) => hosting && debug('took the relay over'),
      (error: unknown) => this.#report(error as Error)
    )
  }

  /**
   * Resolves when this node's sockets are connected and every subscription
   * made so far is live at the relay, proven by a round trip through it.
   * Rejects with {@link RelayUnreachableError} after `readyTimeout`.
   */
  async ready(): Promise<void> {
    await this.#start()
    const client = this.#live()
    if (await client.probe(this.#options.readyTimeout)) {
      this.#ready = true
      return
    }
    if (this.#state !== 'started') throw new StoppedError('The node was stopped before it was ready.')
    const { host, port, readyTimeout } = this.#options
    const hint = await this.#engine.diagnose(this.#options)
    throw new RelayUnreachableError(
      `No ${this.#engine.describe(this.#options)} within ${readyTimeout} ms. ${hint}`,
      host,
      port
    )
  }

  /** The client, or a StoppedError if stop() ran while the caller was waiting. */
  #live(): Connection {
    if (this.#client === undefined) throw new StoppedError('The node was stopped while this call was waiting for it to start.')
    return this.#client
  }

  /** The first readiness of this node's life, shared by every caller. */
  #readyOnce(): Promise<void> {
    if (this.#ready && this.#state === 'started') return Promise.resolve()
    this.#firstReady ??= this.ready().finally(() => {
      this.#firstReady = undefined
    })
    return this.#firstReady
  }

  /**
   * Registers `callback` for `signal` and returns it. Without a callback, returns
   * a decorator for class methods: each instance's method is connected, bound to
   * the instance.
   *
   * @param signal - a signal name, a typed signal, or {@link Any}.
   */
  connect<T = Payload>(signal: SignalRef<T> | AnySignal, callback: Listener<T>, options?: ListenOptions): Listener<T>
  connect<T>(signal: Signal<T>, options?: ListenOptions): MethodDecorator<T>
  connect(signal: string | AnySignal, options?: ListenOptions): MethodDecorator<never>
  connect(
    signal: SignalRef | AnySignal,
    callbackOrOptions?: Listener<never> | ListenOptions,
    maybeOptions?: ListenOptions
  ): Listener<never> | MethodDecorator<unknown> {
    const node = this
    if (typeof callbackOrOptions !== 'function') {
      const options = callbackOrOptions
      this.#check(signal, options)
      return methodDecorator((method) => node.connect(signal as SignalRef<never>, method as Listener<never>, options))
    }
    const callback = callbackOrOptions
    const name = this.#check(signal, maybeOptions)
    const filter = maybeOptions?.group === undefined ? DEFAULT_FILTER : Any
    if (maybeOptions?.group !== undefined) this.#joinGroup(name as string, signalName(signal) as string, maybeOptions)
    this.#dispatcher.add(name, signal, callback, maybeOptions?.sender ?? filter)
    this.#activate()
    return callback
  }

  /**
   * Validates a signal and listen options; returns the topic the listener is
   * filed under: the signal name, this node's group topic, or Any.
   */
  #check(signal: SignalRef | AnySignal, options: ListenOptions | undefined): string | AnySignal {
    const name = signalName(signal)
    if (name !== Any) checkName(name, 'signal')
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError('Listen options must be an object.')
    }
    const sender = options?.sender
    if (sender !== undefined && sender !== Any) checkName(sender, 'sender filter')
    const group = options?.group
    const concurrency = options?.concurrency
    if (concurrency !== undefined) {
      if (group === undefined) throw new TypeError('The concurrency option applies to work-group listeners only: give a group too.')
      if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 100_000) {
        throw new TypeError(`The concurrency of a work-group listener must be an integer from 1 to 100000, got ${String(concurrency)}.`)
      }
    }
    if (options?.durable !== undefined && options.durable !== false && group === undefined) {
      throw new TypeError('The durable option applies to work-group listeners only: give a group too.')
    }
    if (group === undefined) return name
    checkName(group, 'group')
    resolveDurable(options?.durable, this.#engine)
    if (name === Any) throw new TypeError('A work group needs one signal, not Any.')
    // The relay deals events to members by signal alone: a member that then refused
    // the sender would lose the event for the whole group.
    if (sender !== undefined && sender !== Any) throw new TypeError('A work-group listener takes events from every sender; drop the sender option.')
    const topic = groupTopic(name, group, this.nodeId)
    if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) throw new TypeError('The signal and group names are too long together for a work group.')
    return topic
  }

  /** Records (or updates) this node's membership of the group whose topic is `topic`, and tells the engine. */
  #joinGroup(topic: string, signal: string, options: ListenOptions): void {
    const capacity = options.concurrency ?? 1
    const durable = resolveDurable(options.durable, this.#engine)
    let membership = this.#groups.get(topic)
    if (membership === undefined) {
      membership = { topic, signal, group: options.group as string, capacity, done: 0, durable }
      this.#groups.set(topic, membership)
    } else {
      if ((membership.durable === undefined) !== (durable === undefined)) {
        throw new TypeError(`This node is already in group "${membership.group}" of "${signal}" as a ${membership.durable ? 'durable' : 'plain'} member; disconnect it first.`)
      }
      membership.capacity = capacity
    }
    this.#client?.joinGroup(membership)
  }

  /** Starts the node (and its receive loop) in the background for a new listener. */
  #activate(): void {
    if (this.#state === 'started') {
      this.#client?.startReceiving()
      return
    }
    // Every listener connected meanwhile shares this attempt: one failure, one report.
    this.#activation ??= this.#readyOnce()
      .catch((error: Error) => {
        // Stopped on purpose before the relay answered: nothing to report.
        if (!(error instanceof StoppedError)) this.#report(error)
      })
      .finally(() => {
        this.#activation = undefined
      })
  }

  /**
   * A decorator for class methods that emits `signal` after each call returns,
   * with the method's return value as the payload (its resolved value, for a
   * method that returns a promise): a producer method returns the event it
   * describes. A method that returns nothing sends `{}`. With a typed signal,
   * the compiler checks that the method returns that signal's payload type.
   * The method's return value, thrown error or rejection is never changed; a
   * call that throws emits nothing. A failure to send is reported through the
   * `error` event.
   *
   * @example
   * ```ts
   * const OrderPlaced = defineSignal<{ id: number; food: string }>('order-placed')
   * class Orders {
   *   @node.emits(OrderPlaced)
   *   async place(food: string) { return { id: 7, food } }
   * }
   * ```
   */
  emits<T = unknown>(signal: SignalRef<T>, options: EmitOptions = {}): EmitsDecorator<T> {
    const name = signalName(signal)
    if (name === Any) throw new TypeError('Cannot emit to Any: name one signal.')
    checkName(name, 'signal')
    if (options.sender !== undefined) checkName(options.sender, 'sender')
    const node = this
    return (method, context) => {
      if (context.kind !== 'method') throw new TypeError('@emits() decorates class methods only.')
      return function (this: ThisParameterType<typeof method>, ...args: Parameters<typeof method>) {
        const result = method.apply(this, args)
        const owner = (this as { constructor?: { name?: string } } | undefined)?.constructor?.name
        const sender = options.sender ?? (owner ? `${node.#defaultSender}.${owner}` : node.#defaultSender)
        const emit = (value: unknown): void => {
          node.send(signal, value as NoInfer<T>, { sender }).catch((error: Error) => node.#report(error))
        }
        // The rejection handler only keeps this side chain quiet; the caller's promise is returned untouched.
        if (isThenable(result)) result.then(emit, () => undefined)
        else emit(result)
        return result
      }
    }
  }

  /**
   * Registers `handler` as a responder of `signal` and returns it: the value it
   * returns (or resolves) answers a {@link request}; if it throws or rejects,
   * the requester gets a {@link RemoteError}. Only responders answer requests
   * (plain listeners never do, whatever they return). The relay hands each
   * request to one responder, in turn over every responder of the signal on
   * every node. A responder keeps its process alive, as a listener does.
   * Without a handler, returns a decorator for class methods.
   *
   * @example
   * ```ts
   * pyvent.respond('add', ({ a, b }: { a: number; b: number }) => a + b)
   * await pyvent.request('add', { a: 1, b: 2 }) // 3
   * ```
   */
  respond<T = Payload, R = unknown>(signal: SignalRef<T>, handler: Responder<T, R>): Responder<T, R>
  respond<T>(signal: Signal<T>): MethodDecorator<T>
  respond(signal: string): MethodDecorator<never>
  respond(signal: SignalRef, handler?: Responder<never>): Responder<never> | MethodDecorator<unknown> {
    const name = signalName(signal)
    if (name === Any) throw new TypeError('A responder needs one signal, not Any.')
    checkName(name, 'signal')
    if (handler === undefined) return methodDecorator((method) => this.respond(signal as SignalRef<never>, method as Responder<never>))
    if (typeof handler !== 'function') throw new TypeError('The responder must be a function.')
    this.#requests.respond(name, signal, handler)
    this.#activate()
    return handler
  }

  /** Removes `handler` as a responder of `signal` (every responder of it when omitted); returns how many went. */
  unrespond(signal: SignalRef, handler?: Responder<never>): number {
    const name = checkName(signalName(signal), 'signal')
    return this.#requests.unrespond(name, handler)
  }

  /**
   * Removes `callback` from `signal` (every listener of `signal` when `callback`
   * is omitted). A work-group listener is removed by naming its group in
   * `options`. Returns how many registrations were removed.
   */
  disconnect(signal: SignalRef | AnySignal, callback?: Listener<never>, options?: Pick<ListenOptions, 'group'>): number {
    return this.#dispatcher.remove(this.#check(signal, options), callback)
  }

  /**
   * Sends an event to every listener of `signal` on every node. Resolves once the
   * event is queued; waits first if the queue is full (backpressure). Rejects with
   * a `TypeError` for a payload JSON cannot carry faithfully, sending nothing.
   *
   * @param payload - any JSON value. @default {}
   */
  send<T = unknown>(signal: SignalRef<T>, payload?: NoInfer<T>, options?: SendOptions): Promise<void> {
    // Not an async function: on the hot path (started and ready) this allocates
    // no promise of its own and returns the client's.
    let name: string, sender: string, json: string
    try {
      ;[name, sender, json] = this.#encode(signal, payload, options)
    } catch (error) {
      return Promise.reject(error)
    }
    const client = this.#client
    if (this.#ready && this.#state === 'started' && client !== undefined) return client.publish(name, sender, json)
    // Enqueued in the same reaction as readiness, in call order, so a flush()
    // called after this send() (it awaits the same readiness) comes after it.
    this.#waitingSends++
    return this.#readyOnce().then(
      () => {
        this.#waitingSends--
        const client = this.#live()
        // Encoded before the relay said how much it takes: check against that now.
        checkBodySize(json, client.maxPayloadBytes)
        return client.publish(name, sender, json)
      },
      (error: unknown) => {
        this.#waitingSends--
        throw error
      }
    )
  }

  /**
   * Resolves once everything this node sent before the call has passed the
   * relay (proven by a round trip through it). Rejects with
   * {@link TimeoutError} when the relay does not confirm it within `linger`.
   * Call it before `process.exit()`: an exit does not wait for the relay.
   *
   * @example
   * ```ts
   * await pyvent.send('job-done', { id: 7 })
   * await pyvent.flush()
   * process.exit(0)
   * ```
   */
  async flush(): Promise<void> {
    if (this.#state === 'idle') return
    // Sends still waiting for readiness enqueue before this continuation runs.
    if (this.#waitingSends > 0 || !this.#ready) await this.#readyOnce()
    const client = this.#live()
    if (!client.unflushed) return
    const pending = client.unflushedCount
    if (await client.probe(this.#options.linger)) return
    if (this.#client !== client) throw new StoppedError('The node was stopped before the relay confirmed what it sent.')
    throw new TimeoutError(
      `The relay did not confirm ${pending} event${pending === 1 ? '' : 's'} within linger (${this.#options.linger} ms): it is unreachable or stalled by a slow listener.`,
      this.#options.linger
    )
  }

  /** Events sent but not proven forwarded (what an exit now could lose). @internal */
  unflushed(): number {
    return this.#waitingSends + (this.#client?.unflushedCount ?? 0)
  }

  #encode(signal: SignalRef, payload: unknown, options: SendOptions | undefined): [string, string, string] {
    const name = signalName(signal)
    if (name === Any) throw new TypeError('Cannot send to Any: name one signal.')
    checkName(name, 'signal')
    const sender = options?.sender ?? this.#defaultSender
    if (sender !== this.#defaultSender) checkName(sender, 'sender')
    // Against the relay's limit when it is smaller: a larger body would be dropped there.
    const limit = this.#client?.maxPayloadBytes ?? this.#options.maxMessageSize
    return [name, sender, encodePayload(payload === undefined ? {} : payload, limit)]
  }

  /**
   * Resolves with the next event on `signal` that matches `options.sender`.
   * Rejects with {@link TimeoutError} after `options.timeout`, with
   * {@link AbortError} when `options.abortSignal` aborts, with
   * {@link StoppedError} if the node stops first.
   */
  waitFor<T = Payload>(signal: SignalRef<T> | AnySignal, options: WaitOptions = {}): Promise<PyventEvent<T>> {
    let name: string | AnySignal
    try {
      name = this.#check(signal, options)
      checkTimeout(options.timeout, 'waitFor')
    } catch (error) {
      return Promise.reject(error)
    }
    const label = name === Any ? 'any signal' : `"${name}"`
    let waiter: Waiter<PyventEvent<T>> | undefined
    const listener: Listener<never> = (_payload, event) => waiter?.resolve(event as PyventEvent<T>)
    waiter = this.#wait<PyventEvent<T>>(options, `No event on ${label} within ${String(options.timeout)} ms.`, () =>
      this.#dispatcher.remove(name, listener)
    )
    if (waiter.settled) return waiter.promise
    this.#dispatcher.add(name, signal, listener, options.sender ?? DEFAULT_FILTER, true)
    const send = options.send
    const live = waiter
    ;(send === undefined ? this.#readyOnce() : this.ready())
      .then(() => {
        if (live.settled) return
        this.#live().startReceiving()
        if (send !== undefined) return this.send(send.signal, send.payload as never, { sender: send.sender })
      })
      .catch((error: Error) => live.reject(error))
    return waiter.promise
  }

  /**
   * Sends a request and resolves with the reply: the value the responder of
   * `signal` returned (or resolved). The relay hands each request to exactly
   * one responder (in turn, when several are registered); only this node
   * receives the reply. Rejects with {@link NoRespondersError} at once when no
   * responder is registered, {@link RemoteError} if the responder threw,
   * {@link TimeoutError} if no reply came within `options.timeout` (which counts
   * from the call).
   */
  request<R = unknown, T = unknown>(signal: SignalRef<T>, payload?: NoInfer<T>, options: RequestOptions = {}): Promise<R> {
    let name: string, sender: string, json: string
    const timeout = options.timeout ?? 5000
    try {
      ;[name, sender, json] = this.#encode(signal, payload, options)
      checkTimeout(timeout, 'request')
    } catch (error) {
      return Promise.reject(error)
    }
    const id = this.#requests.nextId()
    const waiter = this.#wait<unknown>({ ...options, timeout }, `No responder answered "${name}" within ${timeout} ms.`, () =>
      this.#requests.forget(id)
    )
    if (waiter.settled) return waiter.promise as Promise<R>
    this.#requests.expect(id, name, waiter)
    this.#readyOnce()
      .then(() => {
        if (waiter.settled) return
        const client = this.#live()
        client.startReceiving()
        client.request(name, sender, json, id)
      })
      .catch((error: Error) => waiter.reject(error))
    return waiter.promise as Promise<R>
  }

  /** A pending waitFor or request: bounded by its timeout and abort signal, rejected by stop(). */
  #wait<V>(options: { timeout?: number | undefined; abortSignal?: AbortSignal | undefined }, timeoutMessage: string, cleanup: () => void): Waiter<V> {
    // An already-aborted signal settles it inside the constructor, before the assignment.
    let waiter: Waiter<V> | undefined
    waiter = new Waiter<V>({
      timeout: options.timeout,
      abortSignal: options.abortSignal,
      timeoutMessage,
      cleanup: () => {
        cleanup()
        if (waiter !== undefined) this.#waiters.delete(waiter)
      }
    })
    if (!waiter.settled) this.#waiters.add(waiter)
    return waiter
  }

  #onMessage(message: EventMessage | ReplyMessage): void {
    if (message.kind === 'r') this.#requests.onReply(message)
    else if (message.kind === 'q') this.#requests.onRequest(message)
    else this.#dispatcher.dispatch(message)
  }

  /** Signals whose listener failures were already turned into a process warning. */
  readonly #warned = new Set<string>()

  #report(error: Error): void {
    if (this.listenerCount('error') > 0) {
      this.emit('error', error)
      return
    }
    // Without an 'error' listener: a warning, once per failing signal; the rest go to debug.
    const signal = error instanceof ListenerError ? error.signal : undefined
    if (signal !== undefined && this.#warned.has(signal)) {
      debug('%s (warned before)', error.message)
      return
    }
    if (signal !== undefined) this.#warned.add(signal)
    const code = (error as ListenerError).code
    const more = signal === undefined ? '' : ' (further failures on this signal: DEBUG=pyvent:node, or listen for "error")'
    process.emitWarning(error.message + more, { type: error.name, ...(code === undefined ? {} : { code }) })
  }

  /**
   * The newest `count` events of a durable work group that failed
   * `maxDeliveries` times, newest first (Redis and NATS).
   * Rejects with {@link UnsupportedError} on the relay, which stores nothing.
   */
  async deadLetters(signal: SignalRef, group: string, options: { count?: number } = {}): Promise<DeadLetter[]> {
    const name = checkName(signalName(signal), 'signal')
    checkName(group, 'group')
    const count = options.count ?? 100
    if (!Number.isSafeInteger(count) || count < 1) throw new TypeError(`The count of deadLetters must be a positive integer, got ${String(count)}.`)
    if (!this.#engine.durable) throw new UnsupportedError(this.#engine.name, `The ${this.#engine.name} engine stores no events, so it has no dead letters: durable groups need a Redis or NATS URL.`)
    await this.#start()
    const client = this.#live()
    if (client.deadLetters === undefined) return []
    return client.deadLetters(name, group, count)
  }

  /** Counters: events sent, received, malformed, gaps, duplicates, invalid, and the relay's if hosted. */
  async stats(): Promise<NodeStats> {
    const stats: NodeStats = { ...this.#wire.stats, invalid: this.#dispatcher.invalid + this.#requests.invalid }
    const relay = (await this.#relay?.stats()) ?? this.#lastRelay
    if (relay !== undefined) stats.relay = relay
    return stats
  }

  /** Called when the process has nothing else to do: a node nobody listens on flushes and stops. @internal */
  idle(): void {
    if (this.#state !== 'started' || this.#dispatcher.size > 0 || this.#requests.size > 0) return
    // The process is about to end: hand the relay over to the nodes still using it
    // (it exits by itself once none is) instead of making them take it over.
    this.#stopping ??= this.#shutdown(true).finally(() => {
      this.#stopping = undefined
    })
  }

  /**
   * Flushes what was queued (within `linger`), rejects pending waits and
   * requests with {@link StoppedError}, removes every listener, closes the
   * sockets and, if this node hosts the relay, stops it and frees both ports.
   * Resolves `true` if everything sent was confirmed by the relay (or nothing
   * was pending), `false` if the flush gave up after `linger`.
   * Idempotent; a later call to any other method starts the node again.
   */
  stop(): Promise<boolean> {
    if (this.#state === 'idle') return Promise.resolve(true)
    this.#stopping ??= this.#shutdown().finally(() => {
      this.#stopping = undefined
    })
    return this.#stopping
  }

  async #shutdown(handOver = false): Promise<boolean> {
    // Only wait when a start is in flight: the state must change in this same
    // tick, or a call made right after stop() would see a node about to vanish.
    if (this.#starting !== undefined) await this.#starting.catch(() => undefined)
    if (this.#state !== 'started') return true
    this.#state = 'stopping'
    started.delete(this)
    // What is registered now ends with this stop (after the flush, so events that
    // come back through the relay meanwhile still reach it); what is added while
    // the flush runs belongs to the next start.
    const mark = this.#dispatcher.mark()
    // Responders end with this stop at once (a stopping node answers nothing more);
    // those registered after this point belong to the next start.
    this.#requests.clear()
    const waiters = [...this.#waiters]
    const client = this.#client as Connection
    // Until the first readiness nothing of the user's was queued (send waits for it),
    // so only a node that was ready has anything to flush; one that was not has
    // lost only the sends still waiting for that readiness.
    const pending = this.#ready ? client.unflushed : this.#waitingSends > 0
    const flushed = !pending || (this.#ready && (await client.probe(this.#options.linger)))
    for (const waiter of waiters) waiter.reject(new StoppedError('The node stopped.'))
    this.#dispatcher.removeBefore(mark)
    // Linger only when the relay answered: otherwise what is queued would hold the process for nothing.
    const linger = this.#ready && flushed
    this.#client = undefined
    this.#ready = false
    await client.close(linger)
    await this.#hosting
    const relay = this.#relay
    if (relay?.running === true) {
      this.#lastRelay = (await relay.stats()) ?? this.#lastRelay
      if (handOver) relay.release()
      else await relay.stop()
      this.emit('relay', false)
    }
    this.#state = 'idle'
    debug('stopped (%s)', flushed ? 'flushed' : 'not flushed')
    return flushed
  }

}

/** Durable defaults; see `DurableOptions`. */
const DURABLE_DEFAULTS: DurableSettings = { from: 'now', claimAfter: 30_000, maxDeliveries: 5 }

/** A group's durable settings, or `undefined` for a plain group; a clear error when the engine or a value will not do. */
function resolveDurable(option: ListenOptions['durable'], engine: Engine): DurableSettings | undefined {
  if (option === undefined || option === false) return undefined
  if (!engine.durable) {
    throw new UnsupportedError(
      engine.name,
      `A durable work group needs storage, which the ${engine.name} engine does not have: use a Redis or NATS URL (option "url" or PYVENT_URL), or drop "durable".`
    )
  }
  if (option === true) return { ...DURABLE_DEFAULTS }
  if (typeof option !== 'object' || option === null) throw new TypeError('The durable option must be true, false or an object.')
  const settings = { ...DURABLE_DEFAULTS }
  for (const [key, value] of Object.entries(option)) {
    if (value === undefined) continue
    if (key === 'from') {
      if (value !== 'now' && value !== 'start') throw new TypeError(`durable.from must be "now" or "start", got ${String(value)}.`)
      settings.from = value
    } else if (key === 'claimAfter' || key === 'maxDeliveries') {
      const min = key === 'claimAfter' ? 10 : 1
      if (!Number.isSafeInteger(value) || (value as number) < min) throw new TypeError(`durable.${key} must be an integer of at least ${min}, got ${String(value)}.`)
      settings[key] = value as number
    } else throw new TypeError(`Unknown durable option "${key}". Known: from, claimAfter, maxDeliveries.`)
  }
  return settings
}
