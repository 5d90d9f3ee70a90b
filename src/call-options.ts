/**
 * Checks the options object a method is given: an object (or nothing) with
 * only the keys that method knows, so a misspelt option (`{ gruop: 'workers' }`)
 * is an error, never a silent default, as for the options of `new Node()`; and
 * an `abortSignal` that is an AbortSignal.
 *
 * @module
 */
import { InvalidArgumentError } from './errors'

const LISTEN = ['sender', 'group', 'concurrency', 'durable'] as const

/** The option keys each method takes. */
export const CALL_OPTIONS = {
  connect: LISTEN,
  waitFor: [...LISTEN, 'timeout', 'abortSignal', 'send'],
  /** The `send` option of `waitFor`. */
  'waitFor send': ['signal', 'payload', 'sender'],
  /** The options given to `connect` do for `disconnect` too; only `group` matters there. */
  disconnect: LISTEN,
  send: ['sender'],
  request: ['sender', 'timeout', 'abortSignal'],
  emits: ['sender'],
  deadLetters: ['count']
} as const satisfies Record<string, readonly string[]>

/** A method whose options {@link checkCallOptions} knows. */
export type OptionsOf = keyof typeof CALL_OPTIONS

function shown(value: unknown): string {
  return value === null ? 'null' : typeof value === 'string' ? JSON.stringify(value) : typeof value
}

/**
 * Throws an `InvalidArgumentError` unless `options` is undefined or an object
 * whose keys `method` takes, with an `abortSignal` (if any) that is an AbortSignal.
 */
export function checkCallOptions(options: unknown, method: OptionsOf): void {
  if (options === undefined) return
  const where = method === 'waitFor send' ? 'The send option of waitFor()' : `${method}() options`
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`${where} must be an object, got ${shown(options)}.`)
  const known: readonly string[] = CALL_OPTIONS[method]
  for (const key in options) {
    if (!known.includes(key)) throw new InvalidArgumentError(`Unknown option "${key}" in ${where}. Known options: ${known.join(', ')}.`)
  }
  const { abortSignal } = options as { abortSignal?: unknown }
  if (abortSignal !== undefined && !isAbortSignal(abortSignal)) {
    throw new InvalidArgumentError(`The abortSignal option of ${method}() must be an AbortSignal (from an AbortController, or AbortSignal.timeout()), got ${shown(abortSignal)}.`)
  }
}

function isAbortSignal(value: unknown): value is AbortSignal {
  if (value instanceof AbortSignal) return true
  // One from another realm (a vm context) has the same shape.
  const candidate = value as { aborted?: unknown; addEventListener?: unknown; removeEventListener?: unknown } | null
  return typeof candidate === 'object' && candidate !== null && typeof candidate.aborted === 'boolean' && typeof candidate.addEventListener === 'function' && typeof candidate.removeEventListener === 'function'
}
