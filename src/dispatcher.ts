/**
 * The local dispatcher: which listener gets which event. Listeners are keyed
 * by exact signal name (or {@link Any}) and filtered by sender prefix at dot
 * boundaries. The dispatcher also tells the client which topics to subscribe
 * to, so a process only receives the signals it listens to.
 *
 * @module
 */
import createDebug from 'debug'
import { v5 as uuidv5 } from 'uuid'
import type { EventMessage } from './codec'
import { ListenerError } from './errors'
import { Any, AnySignal, SignalRef, validatePayload } from './signal'

const debug = createDebug('pyvent:dispatch')

/** The metadata of a received event, with its payload. */
export class PyventEvent<T = unknown> {
  /** The signal name. */
  readonly signal: string
  /** The sender name, for example `pyvent` or `customer-manager.orders`. */
  readonly sender: string
  /** The payload, as the sender sent it (after the signal's validator, if any). */
  readonly payload: T
  /** The unique id of the sending node (a UUID). */
  readonly node: string
  /** The event's number in its sender's stream of this signal (from 0). */
  readonly seq: number
  /** When the sender queued the event, in milliseconds since the epoch. */
  readonly timestamp: number
  #id: string | undefined

  /** @internal */
  constructor(signal: string, sender: string, payload: T, node: string, seq: number, timestamp: number) {
    this.signal = signal
    this.sender = sender
    this.payload = payload
    this.node = node
    this.seq = seq
    this.timestamp = timestamp
  }

  /**
   * A UUID unique to this event, the same in every process that receives it.
   * Derived (UUID v5) from the sending node's id and the sequence number, so it
   * costs nothing on the wire and nothing until read.
   */
  get id(): string {
    if (this.#id === undefined) {
      try {
        this.#id = uuidv5(`${this.signal}\0${this.seq}`, this.node)
      } catch {
        // A foreign sender whose node id is not a UUID: derive from a fixed namespace instead.
        this.#id = uuidv5(`${this.node}\0${this.signal}\0${this.seq}`, uuidv5.URL)
      }
    }
    return this.#id
  }

  /** @internal */
  toJSON(): Record<string, unknown> {
    const { signal, sender, payload, node, seq, timestamp, id } = this
    return { signal, sender, id, node, seq, timestamp, payload }
  }
}

/** A listener callback. What it returns is ignored: only a responder (`respond`) answers requests. */
export type Listener<T = unknown> = (payload: T, event: PyventEvent<T>) => unknown

/** Options of `connect`. */
export interface ListenOptions {
  /**
   * Only events from this sender, or from senders below it (`sender.anything`),
   * reach the listener. {@link Any} accepts every sender.
   * @default 'pyvent'
   */
  sender?: string | AnySignal
  /**
   * A work group: each event of the signal goes to one live member of each
   * group (in turn), instead of to every listener. Plain listeners still get
   * every event. Not with {@link Any} as the signal; a member takes events from
   * every sender (the relay deals by signal alone), so not with `sender`.
   */
  group?: string
  /**
   * For a work-group listener: how many of the group's events this node takes
   * at a time. An event is unfinished until the listener returns (or the promise
   * it returns settles); the relay hands this member no more than this many
   * unfinished events, and gives the rest to members with room.
   * @default 1
   */
  concurrency?: number
  /**
   * For a work-group listener on Redis or NATS: the group keeps its events in
   * the engine's storage, so an event sent while no member runs is handled
   * when one starts, and an event whose handler fails (or whose member dies)
   * is handed out again, at least once in all. `true` takes the defaults of
   * {@link DurableOptions}. Refused on the relay, which stores nothing.
   * @default false
   */
  durable?: boolean | DurableOptions
}

/** Options of a durable work group. */
export interface DurableOptions {
  /**
   * Where a group that does not exist yet on the engine starts: `'now'`, the
   * events sent from its creation on; `'start'`, every event the stream still
   * holds. A group that exists already goes on where it stopped.
   * @default 'now'
   */
  from?: 'now' | 'start'
  /**
   * A member's unfinished event (its handler still running, failed, or its
   * process dead) is handed to another member after this many milliseconds.
   * @default 30000
   */
  claimAfter?: number
  /**
   * Deliveries per event; after the last one fails it goes to the group's
   * dead-letter store (`node.deadLetters()`).
   * @default 5
   */
  maxDeliveries?: number
}

/** What the dispatcher needs from its node. */
export interface DispatchHooks {
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  /** A listener failed while handling an event. */
  error(error: ListenerError): void
  /**
   * A work-group event (arrived on group topic `topic`) is finished: every
   * listener it went to returned, threw, or settled the promise it returned.
   * `receipt` is the message's receipt for it; `error` the first failure of
   * its listeners, `undefined` if they all succeeded.
   */
  finished(topic: string, receipt: string | undefined, error: unknown): void
}

interface Registration {
  /** Set when removed, so a batch being delivered skips it for its remaining events. */
  removed?: boolean
  /** Order of registration, for {@link Dispatcher.removeBefore}. */
  serial: number
  name: string | AnySignal
  signal: SignalRef | AnySignal
  callback: Listener<never>
  sender: string | AnySignal
  once: boolean
}

/** The topic (subscription prefix) a listener needs: the signal name, or everything for Any. */
function topicOf(name: string | AnySignal): string {
  return name === Any ? '' : name
}

/** Whether `sender` is `filter` or below it at a dot boundary. */
export function senderMatches(filter: string | AnySignal, sender: string): boolean {
  if (filter === Any || filter === sender) return true
  return sender.length > filter.length && sender.charCodeAt(filter.length) === 46 && sender.startsWith(filter)
}

/** Whether a value is a Promise or another thenable. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function'
}

/** Routes decoded events to local listeners. */
export class Dispatcher {
  readonly #bySignal = new Map<string, Registration[]>()
  #any: Registration[] = []
  readonly #hooks: DispatchHooks
  #size = 0
  #serial = 0
  /** Payloads a signal's validator refused. */
  invalid = 0

  constructor(hooks: DispatchHooks) {
    this.#hooks = hooks
  }

  /** How many listeners are registered. */
  get size(): number {
    return this.#size
  }

  /** Registers a listener. */
  add(name: string | AnySignal, signal: SignalRef | AnySignal, callback: Listener<never>, sender: string | AnySignal, once = false): void {
    const registration: Registration = { name, signal, callback, sender, once, serial: this.#serial++ }
    if (name === Any) {
      this.#any = [...this.#any, registration]
      if (this.#any.length === 1) this.#hooks.subscribe(topicOf(Any))
    } else {
      const list = this.#bySignal.get(name)
      // Lists are replaced, not mutated, so a dispatch in progress sees a stable list.
      this.#bySignal.set(name, list === undefined ? [registration] : [...list, registration])
      if (list === undefined) this.#hooks.subscribe(topicOf(name))
    }
    this.#size++
  }

  /** The topics listeners are registered under ('' for Any). */
  *topics(): Iterable<string> {
    if (this.#any.length > 0) yield topicOf(Any)
    yield* this.#bySignal.keys()
  }

  /** A mark for {@link removeBefore}: everything registered so far. */
  mark(): number {
    return this.#serial
  }

  /** Removes every registration made before `mark` (none made after it). */
  removeBefore(mark: number): void {
    for (const topic of [...this.topics()]) this.#drop(topic === '' ? Any : topic, (r) => r.serial < mark)
  }

  /**
   * Removes the registrations of `callback` for `name` (all of that signal's
   * listeners when `callback` is omitted). Returns how many were removed.
   */
  remove(name: string | AnySignal, callback?: Listener<never>): number {
    // Without a callback: the signal's listeners, not its pending waits (they settle on their own).
    return this.#drop(name, (r) => (callback === undefined ? !r.once : r.callback === callback))
  }

  #drop(name: string | AnySignal, match: (registration: Registration) => boolean): number {
    const list = name === Any ? this.#any : this.#bySignal.get(name)
    if (list === undefined) return 0
    const kept = list.filter((r) => {
      if (!match(r)) return true
      r.removed = true
      return false
    })
    const removed = list.length - kept.length
    if (removed === 0) return 0
    this.#size -= removed
    if (name === Any) this.#any = kept
    else if (kept.length > 0) this.#bySignal.set(name, kept)
    else this.#bySignal.delete(name)
    if (kept.length === 0) this.#hooks.unsubscribe(topicOf(name))
    return removed
  }

  /** Delivers every payload of a decoded event message to the matching listeners. */
  dispatch(message: EventMessage): void {
    // A group member's share arrives on its group topic; Any listeners hear plain events only.
    const named = this.#bySignal.get(message.topic)
    const { payloads } = message
    if (message.group !== undefined) {
      // A work-group share: each event counts as finished once its listeners are done with it.
      for (let i = 0; i < payloads.length; i++) {
        let open = 1
        let failure: unknown
        let failed = false
        const settle = (error?: unknown, hasError = false): void => {
          if (hasError && !failed) {
            failed = true
            failure = error ?? new Error('The listener failed.')
          }
          if (--open === 0) this.#hooks.finished(message.topic, message.receipts?.[i], failed ? failure : undefined)
        }
        if (named !== undefined) this.#deliver(named, message, payloads[i], message.seq + i, () => (open++, settle))
        settle()
      }
      return
    }
    const any = this.#any
    if (named === undefined && any.length === 0) return
    for (let i = 0; i < payloads.length; i++) {
      const payload = payloads[i]
      const seq = message.seq + i
      if (named !== undefined) this.#deliver(named, message, payload, seq)
      if (any.length > 0) this.#deliver(any, message, payload, seq)
    }
  }

  /** `track`, for work-group events: called for each listener run, returns what to call when it is done. */
  #deliver(
    list: Registration[],
    message: EventMessage,
    raw: unknown,
    seq: number,
    track?: () => (error?: unknown, failed?: boolean) => void
  ): void {
    const { signal, sender } = message
    for (const registration of list) {
      if (registration.removed === true || !senderMatches(registration.sender, sender)) continue
      if (registration.once) {
        if (!this.#consume(registration)) continue
      }
      let payload = raw
      try {
        payload = validatePayload(registration.signal, raw)
      } catch (error) {
        this.invalid++
        debug('payload of %s from %s refused by its validator: %s', signal, sender, (error as Error).message)
        this.#hooks.error(new ListenerError(signal, error))
        track?.()(error, true)
        continue
      }
      const event = new PyventEvent(signal, sender, payload, message.node, seq, message.time)
      const done = track?.()
      let result: unknown
      try {
        result = (registration.callback as Listener)(payload, event)
      } catch (error) {
        this.#failed(message, error)
        done?.(error, true)
        continue
      }
      if (isThenable(result)) {
        result.then(
          () => done?.(),
          (error: unknown) => {
            this.#failed(message, error)
            done?.(error, true)
          }
        )
      } else done?.()
    }
  }

  /** Removes a once-registration; `false` if another event already took it. */
  #consume(registration: Registration): boolean {
    return this.#drop(registration.name, (r) => r === registration) === 1
  }

  #failed(message: EventMessage, error: unknown): void {
    this.#hooks.error(new ListenerError(message.signal, error))
  }
}
