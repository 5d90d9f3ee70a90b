/**
 * A promise that settles once: by its owner, by a timeout, or by an
 * AbortSignal. `waitFor` and `request` are built on it.
 *
 * @module
 */
import { AbortError, InvalidArgumentError, TimeoutError } from './errors'

/** The longest timeout a timer can hold (larger ones would fire at once). */
export const MAX_TIMEOUT = 2 ** 31 - 1

/** Throws a `TypeError` unless `timeout` is undefined or a number of milliseconds a timer can hold. */
export function checkTimeout(timeout: unknown, what: string): void {
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0 && timeout <= MAX_TIMEOUT))) {
    const got = typeof timeout === 'string' ? JSON.stringify(timeout) : String(timeout)
    throw new InvalidArgumentError(`${what} timeout must be a number of milliseconds from 0 to ${MAX_TIMEOUT}, got ${got}.`)
  }
}

/** How a {@link Waiter} ends besides its owner settling it. */
export interface WaiterOptions {
  /** Milliseconds before it rejects with a TimeoutError carrying `timeoutMessage` (read when it fires). */
  timeout?: number | undefined
  timeoutMessage: string | (() => string)
  /** Rejects with an AbortError when this aborts (at once if it already has). */
  abortSignal?: AbortSignal | undefined
  /** Runs once, however it settles. */
  cleanup(): void
}

/** A promise that settles exactly once, cleaning up its timer and abort listener. */
export class Waiter<T> {
  readonly promise: Promise<T>
  #resolve!: (value: T) => void
  #reject!: (error: Error) => void
  #settled = false
  readonly #timer: NodeJS.Timeout | undefined
  readonly #options: WaiterOptions
  readonly #onAbort = (): void => this.reject(new AbortError('The operation was aborted.', { cause: this.#options.abortSignal?.reason }))

  constructor(options: WaiterOptions) {
    this.#options = options
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    const { timeout, abortSignal } = options
    if (timeout !== undefined) {
      const message = options.timeoutMessage
      this.#timer = setTimeout(() => this.reject(new TimeoutError(typeof message === 'string' ? message : message(), timeout)), timeout)
    }
    if (abortSignal?.aborted) this.#onAbort()
    else abortSignal?.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** Whether it has settled. */
  get settled(): boolean {
    return this.#settled
  }

  resolve(value: T): void {
    if (this.#finish()) this.#resolve(value)
  }

  reject(error: Error): void {
    if (this.#finish()) this.#reject(error)
  }

  #finish(): boolean {
    if (this.#settled) return false
    this.#settled = true
    clearTimeout(this.#timer)
    this.#options.abortSignal?.removeEventListener('abort', this.#onAbort)
    this.#options.cleanup()
    return true
  }
}

/** A node's pending waits (`waitFor`, `request`): each removes itself when it settles; stop() rejects the rest. */
export class Waits {
  readonly #pending = new Set<{ reject(error: Error): void }>()

  /** A new pending wait; `cleanup` runs once however it settles. */
  create<V>(options: Omit<WaiterOptions, 'cleanup' | 'timeoutMessage'>, timeoutMessage: string | (() => string), cleanup: () => void): Waiter<V> {
    // An already-aborted signal settles it inside the constructor, before the assignment.
    let waiter: Waiter<V> | undefined
    waiter = new Waiter<V>({
      timeout: options.timeout,
      abortSignal: options.abortSignal,
      timeoutMessage,
      cleanup: () => {
        cleanup()
        if (waiter !== undefined) this.#pending.delete(waiter)
      }
    })
    if (!waiter.settled) this.#pending.add(waiter)
    return waiter
  }

  /** The waits pending now (to reject later, once a stop's flush is over). */
  snapshot(): { reject(error: Error): void }[] {
    return [...this.#pending]
  }
}
