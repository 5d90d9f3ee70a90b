/**
 * The public types of a node's methods: their options, what `stats()` returns,
 * the events a node emits, and the `emits` decorator's type.
 *
 * @module
 */
import type { ListenOptions } from './dispatcher'
import type { ClientStats } from './engine'
import type { SignalRef } from './signal'
import type { RelayStats } from './zmq/relay-types'

/** Options of `send`. */
export interface SendOptions {
  /**
   * The sender name listeners filter on.
   * @default 'pyvent', or 'pyvent.<id>' for a node with an id other than 'pyvent'
   */
  sender?: string
}

/** Options of `emits`. */
export interface EmitOptions {
  /**
   * The sender of the emitted events.
   * @default `<the node's default sender>.<class name>`, for example 'pyvent.OrderService'
   */
  sender?: string
}

/**
 * The decorator `emits(signal)` returns: it accepts methods whose return value
 * (or resolved value) is the signal's payload type `T`.
 */
export type EmitsDecorator<T> = <This, Args extends unknown[], R extends T | PromiseLike<T> | (undefined extends T ? void : never)>(
  method: (this: This, ...args: Args) => R,
  context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => R>
) => (this: This, ...args: Args) => R

/** Options of `waitFor`. */
export interface WaitOptions extends ListenOptions {
  /** Reject with {@link TimeoutError} after this many milliseconds. @default no limit */
  timeout?: number
  /**
   * Reject with {@link AbortError} when this signal aborts. (Named `abortSignal`
   * because a "signal" in pyvent is an event name.)
   */
  abortSignal?: AbortSignal
  /**
   * Send this event once the wait is live at the relay, so a reply to it cannot
   * be missed (Pyvent's `wait_for(send=...)`).
   */
  send?: { signal: SignalRef; payload?: unknown; sender?: string }
}

/** Options of `request`. */
export interface RequestOptions extends SendOptions {
  /** Reject with {@link TimeoutError} when no responder answers in this many milliseconds. @default 5000 */
  timeout?: number
  /** Reject with {@link AbortError} when this signal aborts. */
  abortSignal?: AbortSignal
}

/** Counters of a node, from `node.stats()`. */
export interface NodeStats extends ClientStats {
  /** Payloads a typed signal's validator refused. */
  invalid: number
  /** The relay's counters when this node hosts it. */
  relay?: RelayStats
}

/** Events a {@link Node} emits. */
export interface NodeEventMap {
  /** A listener threw or rejected, or the relay could not be reached in the background. */
  error: [error: Error]
  /** This node became (`true`) or stopped being (`false`) the relay. */
  relay: [hosting: boolean]
}
