/**
 * What a node has registered, which outlives its sessions: listeners and
 * pending waits (the dispatcher), responders and pending requests (the
 * request book), work-group memberships. Each change is passed on to the
 * current connection, and a new connection is told all of it.
 *
 * @module
 */
import type { EventMessage, ReplyMessage } from './codec'
import { Dispatcher, Listener, PyventEvent } from './dispatcher'
import type { Connection, Engine } from './engine'
import { StoppedError } from './errors'
import { Memberships } from './memberships'
import { RequestBook } from './requests'
import type { Session } from './session'
import { Any, AnySignal, SignalRef } from './signal'
import type { Waiter } from './waiter'
import { Waits } from './waiter'

/** How long a wait or request may take, and what ends it early. */
interface WaitLimits {
  timeout?: number | undefined
  abortSignal?: AbortSignal | undefined
}

/** A node's registrations. @internal */
export class Registrations {
  readonly dispatcher: Dispatcher
  /** Pending requests and this node's responders. */
  readonly requests: RequestBook
  readonly groups: Memberships
  /** Every pending waitFor and request: a stop rejects them. */
  readonly waits = new Waits()
  readonly #report: (error: Error) => void

  /** `connection()`: the current session's connection, if it is open; `report`: where background failures go. */
  constructor(node: string, engine: Engine, maxMessageSize: number, connection: () => Connection | undefined, report: (error: Error) => void) {
    this.#report = report
    const groups = (this.groups = new Memberships(engine))
    this.dispatcher = new Dispatcher({
      // A group member's topic is joined and left through the group calls.
      subscribe: (topic) => {
        if (!groups.has(topic)) connection()?.listen(topic)
      },
      unsubscribe: (topic) => {
        const membership = groups.leave(topic)
        if (membership === undefined) connection()?.unlisten(topic)
        else connection()?.leaveGroup(membership)
      },
      error: report,
      finished: (topic, receipt, error) => {
        const membership = groups.finished(topic)
        if (membership !== undefined) connection()?.finished(membership, receipt, error)
      }
    })
    this.requests = new RequestBook(
      node,
      {
        serve: (signal) => connection()?.serve(signal),
        unserve: (signal) => connection()?.unserve(signal),
        reply: (to, request, ok, json) => connection()?.reply(to, request, ok, json)
      },
      maxMessageSize
    )
  }

  /** How many listeners, waits, requests and responders need receiving. */
  demand(): number {
    return this.dispatcher.size + this.requests.size
  }

  /** Payloads that typed signals' validators refused. */
  get invalid(): number {
    return this.dispatcher.invalid + this.requests.invalid
  }

  /** Tells a new connection everything registered. */
  restore(connection: Connection): void {
    for (const signal of this.requests.signals()) connection.serve(signal)
    for (const membership of this.groups.values()) connection.joinGroup(membership)
    for (const topic of this.dispatcher.topics()) if (!this.groups.has(topic)) connection.listen(topic)
  }

  /**
   * A stop begins. What is registered now ends with it (after the flush, so
   * events that come back through the engine meanwhile still reach it); what is
   * added while the flush runs belongs to the next start. Responders end at
   * once. Returns what to run once the flush is over.
   */
  stopping(): () => void {
    const mark = this.dispatcher.mark()
    this.requests.clear()
    const waiters = this.waits.snapshot()
    return () => {
      for (const waiter of waiters) waiter.reject(new StoppedError('The node stopped.'))
      this.dispatcher.removeBefore(mark)
    }
  }

  /** Routes what the connection delivered. */
  deliver(message: EventMessage | ReplyMessage): void {
    if (message.kind === 'r') this.requests.onReply(message)
    else if (message.kind === 'q') this.requests.onRequest(message)
    else this.dispatcher.dispatch(message)
  }

  /**
   * A wait for the next event on `topic` from `sender`: registered at once, live
   * once `ready()` resolves; `then` runs after that (waitFor's `send`).
   */
  waitFor<T>(
    topic: string | AnySignal,
    signal: SignalRef | AnySignal,
    sender: string | AnySignal,
    limits: WaitLimits,
    ready: () => Promise<Session>,
    then?: () => Promise<void>
  ): Promise<PyventEvent<T>> {
    const label = topic === Any ? 'any signal' : `"${topic}"`
    let waiter: Waiter<PyventEvent<T>> | undefined
    let started = false
    const listener: Listener<never> = (_payload, event) => waiter?.resolve(event as PyventEvent<T>)
    // A timeout that comes before the node was ready never listened: say so, not only "no event".
    const message = (): string =>
      started
        ? `No event on ${label} within ${String(limits.timeout)} ms.`
        : `No event on ${label} within ${String(limits.timeout)} ms, and the relay (or engine server) had not confirmed the wait yet: is one running at the address?`
    waiter = this.waits.create<PyventEvent<T>>(limits, message, () => this.dispatcher.remove(topic, listener))
    if (waiter.settled) return waiter.promise
    this.dispatcher.add(topic, signal, listener, sender, true)
    const live = waiter
    ready()
      .then((session) => {
        if (live.settled) return
        started = true
        session.connection.startReceiving()
        return then?.()
      })
      .catch((error: Error) => (live.settled ? this.#unheard(error) : live.reject(error)))
    return waiter.promise
  }

  /** Sends a request once `ready` resolves, and waits for its one reply. */
  request(signal: string, sender: string, json: string, limits: WaitLimits & { timeout: number }, ready: () => Promise<Session>): Promise<unknown> {
    const id = this.requests.nextId()
    let sent = false
    // A timeout that comes before the node was ready never reached a responder: say so, not "no responder".
    const message = (): string =>
      sent
        ? `No responder answered "${signal}" within ${limits.timeout} ms.`
        : `The request "${signal}" was not sent within ${limits.timeout} ms: no relay or engine server had answered this node yet (is one running at the address?).`
    const waiter = this.waits.create<unknown>(limits, message, () => this.requests.forget(id))
    if (waiter.settled) return waiter.promise
    this.requests.expect(id, signal, waiter)
    ready()
      .then((session) => {
        if (waiter.settled) return
        const connection = session.connection
        connection.startReceiving()
        connection.request(signal, sender, json, id)
        sent = true
      })
      .catch((error: Error) => (waiter.settled ? this.#unheard(error) : waiter.reject(error)))
    return waiter.promise
  }

  /**
   * Why the node could not start, when the wait or request that needed it had
   * ended first (its timeout, its abortSignal): reported (once for every
   * caller that shared it: the reporter drops repeats), or nobody would learn
   * that the relay or server was unreachable.
   */
  #unheard(error: Error): void {
    if (!(error instanceof StoppedError)) this.#report(error)
  }
}
