/**
 * Where failures that broke no call go: the node's `error` event when
 * someone listens, else one process warning per failing signal (the rest to
 * `DEBUG=pyvent:node`), never an unhandled crash.
 *
 * @module
 */
import type { EventEmitter } from 'node:events'
import createDebug from 'debug'
import { ListenerError } from './errors'

const debug = createDebug('pyvent:node')

/** Reports a node's background failures. @internal */
export class Reporter {
  readonly #emitter: EventEmitter
  /** Signals whose listener failures were already turned into a process warning. */
  readonly #warned = new Set<string>()
  /** Failures already reported: one failure shared by several callers (a node's start) is reported once. */
  readonly #reported = new WeakSet<Error>()

  constructor(emitter: EventEmitter) {
    this.#emitter = emitter
  }

  report(error: Error): void {
    if (this.#reported.has(error)) return
    this.#reported.add(error)
    if (this.#emitter.listenerCount('error') > 0) {
      this.#emitter.emit('error', error)
      return
    }
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
}
