/**
 * Signal names, the `Any` wildcard and typed signals.
 *
 * @module
 */
import { InvalidArgumentError } from './errors'

/**
 * Matches any signal (as a signal) or any sender (as a sender filter).
 *
 * @example
 * ```ts
 * pyvent.connect(Any, (payload, event) => console.log(event.signal, payload), { sender: Any })
 * ```
 */
export const Any: unique symbol = Symbol.for('pyvent.Any')

/** The type of {@link Any}. */
export type AnySignal = typeof Any

/**
 * A signal whose payload type is known to the compiler. Create one with
 * {@link defineSignal}; use it wherever a signal name is accepted.
 */
export interface Signal<T = unknown> {
  /** The signal name on the wire. */
  readonly name: string
  /** Optional runtime check applied to received payloads before listeners run. */
  readonly validate?: PayloadValidator<T>
  /** Phantom field that carries the payload type; never set at run time. */
  readonly __payload?: T
}

/** A function that returns the payload (possibly converted) or throws, or any schema object with a `parse` method. */
export type PayloadValidator<T> = ((payload: unknown) => T) | { parse(payload: unknown): T }

/** Anything that names one signal: its name or a typed {@link Signal}. */
export type SignalRef<T = unknown> = string | Signal<T>

/**
 * The payload type assumed for a bare signal name when nothing else says:
 * an object of unchecked values, like Pyvent's keyword arguments. Annotate the
 * listener's parameter, or use {@link defineSignal}, for a precise type.
 */
export type Payload = Record<string, unknown>

/**
 * Defines a typed signal.
 *
 * @example
 * ```ts
 * const OrderFood = defineSignal<{ food: string; drink?: string }>('order-food')
 * pyvent.connect(OrderFood, ({ food }) => console.log(food)) // food: string
 * await pyvent.send(OrderFood, { food: 'sushi' })           // checked by the compiler
 * ```
 *
 * @param name - the signal name on the wire.
 * @param validate - optional runtime check of received payloads: a function, or a schema with `parse`.
 */
export function defineSignal<T>(name: string, validate?: PayloadValidator<T>): Signal<T> {
  if (typeof name !== 'string') throw new InvalidArgumentError('defineSignal() needs a signal name string.')
  if (validate !== undefined && typeof validate !== 'function' && typeof (validate as { parse?: unknown }).parse !== 'function') {
    throw new InvalidArgumentError('The validator must be a function or an object with a parse() method.')
  }
  return Object.freeze(validate === undefined ? { name } : { name, validate })
}

/** The wire name of a signal reference. */
export function signalName(signal: SignalRef | AnySignal): string | AnySignal {
  if (signal === Any || typeof signal === 'string') return signal
  if (typeof signal === 'object' && signal !== null && typeof signal.name === 'string') return signal.name
  throw new InvalidArgumentError(`A signal must be a string, a defineSignal() object or Any, got ${signal === null ? 'null' : typeof signal}.`)
}

/** Runs a signal's validator, if it has one. */
export function validatePayload(signal: SignalRef | AnySignal, payload: unknown): unknown {
  if (typeof signal !== 'object' || signal.validate === undefined) return payload
  const check = signal.validate
  return typeof check === 'function' ? check(payload) : check.parse(payload)
}
