/**
 * The node: the public facade (connect, send, waitFor, request/respond,
 * emits, flush, stats, stop). It keeps what outlives a start-to-stop life
 * (listeners, responders, group memberships, counters) and hands each life
 * to a {@link Session}; it talks to an engine only through src/engine.ts.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import { v4 as uuidv4 } from 'uuid'
import { checkName, encodePayload } from './payload'
import { emitsDecorator, MethodDecorator, methodDecorator } from './decorators'
import type { Listener, ListenOptions, PyventEvent } from './dispatcher'
import { DeadLetter, emptyClientStats, Engine, RelayHosting, WireState } from './engine'
import { engineFor, warnIgnored } from './engines'
import { Lifecycle } from './lifecycle'
import { deadLetterQuery, listenTopic } from './listen-options'
import type { EmitOptions, EmitsDecorator, NodeEventMap, NodeStats, RequestOptions, SendOptions, WaitOptions } from './node-types'
import { NodeOptions, ResolvedOptions, resolveOptions } from './options'
import { Reporter } from './report'
import { Registrations } from './registrations'
import type { Responder } from './requests'
import { GapTracker } from './sequence'
import { Any, AnySignal, Payload, Signal, SignalRef, signalName } from './signal'
import { checkTimeout } from './waiter'
import type { RelayStats } from './zmq/relay-types'
import { InvalidArgumentError } from './errors'
import { checkCallOptions } from './call-options'

/** The sender filter of a listener that names none: events from `pyvent` and `pyvent.*`. */
export const DEFAULT_FILTER = 'pyvent'

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
  readonly #engine: Engine
  /** The relay this node may host (the relay engine only). */
  readonly #relay: RelayHosting<RelayStats> | undefined
  /** Listeners, waits, responders, requests and memberships: they outlive sessions. */
  readonly #registry: Registrations
  /** Sequence numbers, counters and gap tracking: kept across sessions, so event ids never repeat and stats() adds up. */
  readonly #wire: WireState = { seqs: new Map(), stats: emptyClientStats(), gaps: new GapTracker() }
  readonly #reporter = new Reporter(this)
  /** Its start-to-stop lives, one session each. */
  readonly #lives: Lifecycle

  constructor(options: NodeOptions = {}) {
    super()
    this.#options = resolveOptions(options)
    this.#engine = engineFor(this.#options)
    warnIgnored(this.#engine, options)
    this.#relay = this.#engine.relay() as RelayHosting<RelayStats> | undefined
    this.#defaultSender = this.#options.id === 'pyvent' ? 'pyvent' : `pyvent.${this.#options.id}`
    const registry = (this.#registry = new Registrations(
      this.nodeId,
      this.#engine,
      this.#options.maxMessageSize,
      () => this.#lives.session?.openConnection,
      (error) => this.#report(error)
    ))
    this.#lives = new Lifecycle({
      session: {
        options: this.#options,
        nodeId: this.nodeId,
        engine: this.#engine,
        relay: this.#relay,
        wire: this.#wire,
        message: (message) => registry.deliver(message),
        error: (error) => this.#report(error),
        demand: () => registry.demand(),
        restore: (connection) => registry.restore(connection),
        relayChanged: (hosting) => this.emit('relay', hosting)
      },
      busy: () => registry.demand() > 0,
      stopping: () => registry.stopping(),
      report: (error) => this.#report(error)
    })
    this.#relay?.on('lost', () => {
      this.emit('relay', false)
      this.#lives.session?.takeOver()
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
    return this.#lives.session !== undefined
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
    return (await this.#lives.open()).host()
  }

  /**
   * Resolves when this node's sockets are connected and every subscription
   * made so far is live at the relay, proven by a round trip through it.
   * Rejects with {@link RelayUnreachableError} after `readyTimeout`, and with
   * {@link UnsupportedError} when the server answers but cannot hold something
   * registered (a durable group on NATS without JetStream).
   */
  async ready(): Promise<void> {
    const session = await this.#lives.ready()
    const unsupported = session.connection.unsupported?.()
    if (unsupported !== undefined) throw unsupported
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
    if (typeof callbackOrOptions !== 'function') {
      if (maybeOptions !== undefined || (callbackOrOptions !== undefined && (typeof callbackOrOptions !== 'object' || callbackOrOptions === null))) {
        throw new InvalidArgumentError(`connect(signal, listener, options): the listener must be a function, got ${callbackOrOptions === null ? 'null' : typeof callbackOrOptions}.`)
      }
      const options = callbackOrOptions
      listenTopic(signal, options, this.nodeId, this.#engine, 'connect')
      return methodDecorator((method) => this.connect(signal as SignalRef<never>, method as Listener<never>, options))
    }
    const topic = listenTopic(signal, maybeOptions, this.nodeId, this.#engine, 'connect')
    const grouped = maybeOptions?.group !== undefined
    if (grouped) {
      const membership = this.#registry.groups.join(topic as string, signalName(signal) as string, maybeOptions)
      this.#lives.session?.openConnection?.joinGroup(membership)
    }
    this.#registry.dispatcher.add(topic, signal, callbackOrOptions, maybeOptions?.sender ?? (grouped ? Any : DEFAULT_FILTER))
    this.#lives.activate()
    return callbackOrOptions
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
    if (name === Any) throw new InvalidArgumentError('Cannot emit to Any: name one signal.')
    checkName(name, 'signal')
    checkCallOptions(options, 'emits')
    if (options.sender !== undefined) checkName(options.sender, 'sender')
    return emitsDecorator((self, value) => this.emitFrom(self, signal, value, options))
  }

  /** Sends what an `@emits` method of `self` returned; a failure goes to the `error` event. @internal */
  emitFrom(self: unknown, signal: SignalRef, value: unknown, options: EmitOptions = {}): void {
    const owner = (self as { constructor?: { name?: string } } | undefined)?.constructor?.name
    const sender = options.sender ?? (owner ? `${this.#defaultSender}.${owner}` : this.#defaultSender)
    this.send(signal, value as never, { sender }).catch((error: Error) => this.#report(error))
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
    if (name === Any) throw new InvalidArgumentError('A responder needs one signal, not Any.')
    checkName(name, 'signal')
    if (handler === undefined) return methodDecorator((method) => this.respond(signal as SignalRef<never>, method as Responder<never>))
    if (typeof handler !== 'function') throw new InvalidArgumentError('The responder must be a function.')
    this.#registry.requests.respond(name, signal, handler)
    this.#lives.activate()
    return handler
  }

  /** Removes `handler` as a responder of `signal` (every responder of it when omitted); returns how many went. */
  unrespond(signal: SignalRef, handler?: Responder<never>): number {
    return this.#registry.requests.unrespond(checkName(signalName(signal), 'signal'), handler)
  }

  /**
   * Removes `callback` from `signal` (every listener of `signal` when `callback`
   * is omitted). A work-group listener is removed by naming its group in
   * `options` (the options it was connected with do: only `group` counts).
   * Returns how many registrations were removed.
   */
  disconnect(signal: SignalRef | AnySignal, callback?: Listener<never>, options?: ListenOptions): number {
    return this.#registry.dispatcher.remove(listenTopic(signal, options, this.nodeId, this.#engine, 'disconnect'), callback)
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
    // no promise of its own and returns the connection's.
    let name: string, sender: string, json: string
    try {
      ;[name, sender, json] = this.#encode(signal, payload, options, 'send')
    } catch (error) {
      return Promise.reject(error)
    }
    const ready = this.#lives.session?.readyConnection
    return ready !== undefined ? ready.publish(name, sender, json) : this.#lives.publishWhenReady(name, sender, json)
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
  flush(): Promise<void> {
    return this.#lives.flush()
  }

  #encode(signal: SignalRef, payload: unknown, options: SendOptions | undefined, method: 'send' | 'request'): [string, string, string] {
    if (options !== undefined) checkCallOptions(options, method)
    const name = signalName(signal)
    if (name === Any) throw new InvalidArgumentError('Cannot send to Any: name one signal.')
    checkName(name, 'signal')
    const sender = options?.sender ?? this.#defaultSender
    if (sender !== this.#defaultSender) checkName(sender, 'sender')
    // Against the engine's limit when it is smaller: a larger body would be dropped there.
    const limit = this.#lives.session?.openConnection?.maxPayloadBytes ?? this.#options.maxMessageSize
    return [name, sender, encodePayload(payload === undefined ? {} : payload, limit)]
  }

  /**
   * Resolves with the next event on `signal` that matches `options.sender`.
   * Rejects with {@link TimeoutError} after `options.timeout`, with
   * {@link AbortError} when `options.abortSignal` aborts, with
   * {@link StoppedError} if the node stops first.
   */
  waitFor<T = Payload>(signal: SignalRef<T> | AnySignal, options: WaitOptions = {}): Promise<PyventEvent<T>> {
    let topic: string | AnySignal
    try {
      topic = listenTopic(signal, options, this.nodeId, this.#engine, 'waitFor')
      checkTimeout(options.timeout, 'waitFor')
      checkCallOptions(options.send, 'waitFor send')
    } catch (error) {
      return Promise.reject(error)
    }
    const send = options.send
    // With `send`, a fresh round trip: the wait must be live at the engine before the event goes out.
    const ready = send === undefined ? () => this.#lives.readyOnce() : () => this.#lives.ready()
    const then = send && (() => this.send(send.signal, send.payload as never, { sender: send.sender }))
    return this.#registry.waitFor<T>(topic, signal, options.sender ?? DEFAULT_FILTER, options, ready, then)
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
    let name: string, sender: string, json: string, timeout: number
    try {
      ;[name, sender, json] = this.#encode(signal, payload, options, 'request')
      timeout = options.timeout ?? 5000
      checkTimeout(timeout, 'request')
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#registry.request(name, sender, json, { ...options, timeout }, () => this.#lives.readyOnce()) as Promise<R>
  }

  #report(error: Error): void {
    this.#reporter.report(error)
  }

  /**
   * The newest `count` events of a durable work group that failed
   * `maxDeliveries` times, newest first (Redis and NATS).
   * Rejects with {@link UnsupportedError} on the relay, which stores nothing.
   */
  async deadLetters(signal: SignalRef, group: string, options: { count?: number } = {}): Promise<DeadLetter[]> {
    const [name, count] = deadLetterQuery(signal, group, options, this.#engine)
    // Ready first: a server that cannot be reached is a RelayUnreachableError after readyTimeout, as for send().
    const connection = (await this.#lives.readyOnce()).connection
    return connection.deadLetters === undefined ? [] : connection.deadLetters(name, group, count)
  }

  /** Counters: events sent, received, malformed, gaps, duplicates, invalid, and the relay's if hosted. */
  async stats(): Promise<NodeStats> {
    const stats: NodeStats = { ...this.#wire.stats, invalid: this.#registry.invalid }
    const relay = ((await this.#relay?.stats()) ?? this.#lives.lastRelay) as RelayStats | undefined
    if (relay !== undefined) stats.relay = relay
    return stats
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
    return this.#lives.stop()
  }
}
