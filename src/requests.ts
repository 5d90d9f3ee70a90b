/**
 * Request and reply, both sides of one node: the requests it waits on (one
 * answer each) and the responders it runs. Answering is explicit: only a
 * handler registered with `respond()` answers, and the relay hands each
 * request to one responder (in turn when there are several), or answers
 * "no responders" itself when there is none.
 *
 * @module
 */
import createDebug from 'debug'
import type { EventMessage, ReplyMessage } from './codec'
import { encodePayload } from './payload'
import { PyventEvent } from './dispatcher'
import { InvalidPayloadError, MessageTooLargeError, NoRespondersError, RemoteError } from './errors'
import { isThenable } from './dispatcher'
import { SignalRef, validatePayload } from './signal'
import type { Waiter } from './waiter'

const debug = createDebug('pyvent:request')

/** A responder: its return value (or resolved value) is the reply. */
export type Responder<T = unknown, R = unknown> = (payload: T, event: PyventEvent<T>) => R | PromiseLike<R>

/** What the request book needs from its node. */
export interface RequestHooks {
  /** This node has responders of `signal` now. */
  serve(signal: string): void
  /** ... and no longer. */
  unserve(signal: string): void
  /** Sends the answer to request `request` of node `node`. */
  reply(node: string, request: string, ok: boolean, json: string): void
}

interface Pending {
  signal: string
  waiter: Waiter<unknown>
}

interface Responders {
  signal: SignalRef
  handlers: Responder<never>[]
  next: number
}

function describeError(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message }
  // A thrown string says itself; a thrown object says its JSON (String() would say "[object Object]").
  try {
    if (typeof error === 'object' && error !== null) {
      const { message } = error as { message?: unknown }
      if (typeof message === 'string') return { name: 'Error', message }
      const json = JSON.stringify(error)
      if (json !== undefined) return { name: 'Error', message: json }
    }
    return { name: 'Error', message: String(error) }
  } catch {
    // A getter that threw, a cycle, a BigInt, an object without toString.
    return { name: 'Error', message: 'The responder threw a value that cannot be shown.' }
  }
}

/** The requests a node waits on and the responders it runs. @internal */
export class RequestBook {
  readonly #node: string
  readonly #hooks: RequestHooks
  readonly #maxMessageSize: number
  readonly #pending = new Map<string, Pending>()
  readonly #responders = new Map<string, Responders>()
  #count = 0
  /** Request payloads a typed signal's validator refused. */
  invalid = 0

  constructor(node: string, hooks: RequestHooks, maxMessageSize: number) {
    this.#node = node
    this.#hooks = hooks
    this.#maxMessageSize = maxMessageSize
  }

  /** Pending requests plus registered responders: what keeps the node receiving. */
  get size(): number {
    return this.#pending.size + this.#responders.size
  }

  /** A request id no other request of this node has had. */
  nextId(): string {
    return `${this.#node}.${++this.#count}`
  }

  /** Waits for the reply to request `id`; the waiter's cleanup must call {@link forget}. */
  expect(id: string, signal: string, waiter: Waiter<unknown>): void {
    this.#pending.set(id, { signal, waiter })
  }

  forget(id: string): void {
    this.#pending.delete(id)
  }

  /** The signals this node serves. */
  signals(): Iterable<string> {
    return this.#responders.keys()
  }

  /** Registers `handler` as a responder of signal `name`. */
  respond(name: string, signal: SignalRef, handler: Responder<never>): void {
    const entry = this.#responders.get(name)
    if (entry === undefined) {
      this.#responders.set(name, { signal, handlers: [handler], next: 0 })
      this.#hooks.serve(name)
    } else entry.handlers = [...entry.handlers, handler]
  }

  /** Removes `handler` (every responder of `name` when omitted); returns how many went. */
  unrespond(name: string, handler?: Responder<never>): number {
    const entry = this.#responders.get(name)
    if (entry === undefined) return 0
    const kept = handler === undefined ? [] : entry.handlers.filter((h) => h !== handler)
    const removed = entry.handlers.length - kept.length
    if (kept.length > 0) entry.handlers = kept
    else {
      this.#responders.delete(name)
      this.#hooks.unserve(name)
    }
    return removed
  }

  /** Removes every responder (at stop). */
  clear(): void {
    for (const name of [...this.#responders.keys()]) this.unrespond(name)
  }

  /** A reply arrived on this node's reply topic. */
  onReply(message: ReplyMessage): void {
    const pending = this.#pending.get(message.request)
    if (pending === undefined) return
    const { waiter, signal } = pending
    if (message.noResponders === true) waiter.reject(new NoRespondersError(signal))
    else if (message.ok) waiter.resolve(message.value)
    else {
      const remote = (message.value ?? {}) as { name?: unknown; message?: unknown }
      waiter.reject(new RemoteError(String(remote.name ?? 'Error'), String(remote.message ?? 'The responder failed.')))
    }
  }

  /** A request the relay handed to this node: one of its responders answers. */
  onRequest(message: EventMessage): void {
    const entry = this.#responders.get(message.signal)
    if (entry === undefined || message.request === undefined) {
      debug('a request for %s arrived after its responder left', message.signal)
      return
    }
    const handler = entry.handlers[entry.next % entry.handlers.length] as Responder
    entry.next = (entry.next + 1) % entry.handlers.length
    let payload: unknown
    try {
      payload = validatePayload(entry.signal, message.payloads[0])
    } catch (error) {
      this.invalid++
      debug('request payload of %s refused by its validator: %s', message.signal, (error as Error).message)
      this.#answer(message, false, describeError(error))
      return
    }
    const event = new PyventEvent(message.signal, message.sender, payload, message.node, message.seq, message.time)
    let result: unknown
    try {
      result = handler(payload, event)
    } catch (error) {
      this.#answer(message, false, describeError(error))
      return
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.#answer(message, true, value),
        (error: unknown) => this.#answer(message, false, describeError(error))
      )
    } else this.#answer(message, true, result)
  }

  #answer(message: EventMessage, ok: boolean, value: unknown): void {
    let json: string
    try {
      // A responder that returns nothing answers null: the requester still gets its one reply.
      json = encodePayload(value === undefined ? null : value, this.#maxMessageSize)
    } catch (error) {
      ok = false
      const { name, message: text } = error as InvalidPayloadError | MessageTooLargeError
      json = JSON.stringify({ name, message: `The responder's reply could not be sent: ${text}` })
    }
    this.#hooks.reply(message.node, message.request as string, ok, json)
  }
}
