/**
 * What an application may send: signal and sender names, and payloads that
 * JSON carries faithfully. Checked in `send` (and `request`, replies) before
 * anything is queued, so a bad value fails where it was passed, with a message
 * that names the culprit. Pure functions, no sockets.
 *
 * @module
 */
import { InvalidArgumentError, InvalidPayloadError, MessageTooLargeError } from './errors'
import { RESERVED_PREFIX } from './topics'

/** The longest signal or sender name, in UTF-8 bytes. */
const MAX_NAME_BYTES = 255
/** A surrogate code unit without its other half (with the `u` flag, a whole pair is one code point and does not match). */
const LONE_SURROGATE = /\p{Surrogate}/u

/** Names that passed {@link checkName}, so that send() checks a name once. */
const checkedNames = new Set<string>()
/** Most names remembered: a program that invents names without end must not grow the set without end. */
const CHECKED_NAMES_LIMIT = 1024

/**
 * Checks a signal or sender name and throws a `TypeError` that says what is wrong.
 *
 * @param what - how to call the name in the message (`'signal'`, `'sender'`).
 * @param internal - allow the reserved `$` prefix (for the protocol's own topics).
 */
export function checkName(name: unknown, what: string, internal = false): string {
  // send() checks its names on every call: remember the good ones.
  if (typeof name === 'string' && checkedNames.has(name)) return name
  if (typeof name !== 'string') {
    throw new InvalidArgumentError(`The ${what} must be a string, got ${describe(name)}.`)
  }
  if (name.length === 0) throw new InvalidArgumentError(`The ${what} must not be empty.`)
  if (name.includes('\0')) throw new InvalidArgumentError(`The ${what} must not contain a NUL character.`)
  // A name travels as UTF-8, which has no lone surrogate: it would arrive as U+FFFD, another name.
  if (LONE_SURROGATE.test(name)) {
    throw new InvalidArgumentError(`The ${what} holds half of a UTF-16 surrogate pair (a string cut in the middle of a character such as an emoji); UTF-8 cannot carry it, so it would arrive as another name.`)
  }
  if (!internal && name.startsWith(RESERVED_PREFIX)) {
    throw new InvalidArgumentError(
      `The ${what} "${name}" starts with "${RESERVED_PREFIX}", which is reserved for pyvent's own messages; choose another name.`
    )
  }
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    throw new InvalidArgumentError(`The ${what} is longer than ${MAX_NAME_BYTES} bytes of UTF-8.`)
  }
  if (!internal) {
    if (checkedNames.size >= CHECKED_NAMES_LIMIT) checkedNames.clear()
    checkedNames.add(name)
  }
  return name
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'symbol') return 'a symbol'
  if (typeof value === 'string') return `"${value}"`
  return typeof value
}

/** How a property appears in a path: `.name`, `[3]` or `["odd key"]`. */
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** The longest path an error message spells out; deeper ones start with `payload…`. */
const MAX_PATH_STEPS = 32

/** The name of the class whose prototype is `proto`, as well as it can be told. */
function className(proto: unknown): string {
  const ctor = (proto as { constructor?: unknown } | null)?.constructor
  return typeof ctor === 'function' && ctor.name !== '' ? ctor.name : 'Object'
}

function article(name: string): string {
  return /^[AEIO]/.test(name) ? `an ${name}` : `a ${name}`
}

/** Why a value is refused: what it is, and why JSON would change it (and what to send instead). */
type Refusal = [what: string, why: string]

/**
 * Why `value`, an object JSON would serialise as it is (`toJSON` already
 * applied), is refused, or `undefined` if it is a plain object or an array.
 */
function objectRefusal(value: object): Refusal | undefined {
  if (Array.isArray(value)) return undefined
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) return undefined
  const what = article(className(proto))
  if (value instanceof Map || value instanceof Set) return [what, 'JSON turns it into {}. Send an array or an object']
  if (value instanceof Error) return [what, 'JSON loses its message and stack. Send { name, message } or a string']
  if (value instanceof RegExp) return [what, 'JSON turns it into {}. Send its source as a string']
  if (isBinary(value)) return binaryRefusal(value)
  return [
    `${what} (a class instance without toJSON)`,
    'JSON keeps only its own properties and loses the class. Send a plain object, or give the class a toJSON method'
  ]
}

function isBinary(value: unknown): value is ArrayBufferView | ArrayBuffer {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer
}

function binaryRefusal(value: object): Refusal {
  return [
    article(className(Object.getPrototypeOf(value))),
    'JSON has no bytes, so the receiver would get an object of numbers or {}. Send an array of numbers or a base64 string'
  ]
}

/**
 * `JSON.stringify` with a replacer that refuses, naming the path, whatever JSON
 * would change. The slow, precise path, taken by payloads with a `toJSON` (a
 * `Date`) or anything else the quick check does not pass.
 */
function stringifyFaithfully(payload: unknown): string | undefined {
  // The objects being serialised, the payload first, with the key of each in the one
  // before. JSON calls the replacer depth first, with `this` on this chain: a call
  // from an object further up means the ones below it are done.
  const chain: object[] = []
  const keys: string[] = []
  let lastHolder: object | undefined
  let lastKey = ''
  let lastValue: unknown
  const pathTo = (holder: object, key: string): string => {
    const end = chain.lastIndexOf(holder) + 1 // 0 for the wrapper JSON puts around the payload
    if (end === 0) return 'payload'
    let path = ''
    for (let i = Math.max(1, end - MAX_PATH_STEPS + 1); i <= end; i++) {
      const [parent, name] = i < end ? [chain[i - 1]!, keys[i]!] : [holder, key]
      path += Array.isArray(parent) ? `[${name}]` : IDENTIFIER.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`
    }
    return (end > MAX_PATH_STEPS ? 'payload…' : 'payload') + path
  }
  const refuse = (holder: object, key: string, [what, why]: Refusal): never => {
    throw new InvalidPayloadError(`Cannot send ${what} at ${pathTo(holder, key)}: ${why}.`)
  }
  function replacer(this: object, key: string, value: unknown): unknown {
    while (chain.length > 0 && chain[chain.length - 1] !== this) {
      chain.pop()
      keys.pop()
    }
    lastHolder = this
    lastKey = key
    lastValue = value
    switch (typeof value) {
      case 'object': {
        if (value === null) return value
        const refusal = objectRefusal(value)
        if (refusal !== undefined) refuse(this, key, refusal)
        // JSON has already called toJSON, and Buffer's hides the bytes in {"type":"Buffer","data":[...]}.
        if ((value as { type?: unknown }).type === 'Buffer') {
          const original: unknown = Object.getOwnPropertyDescriptor(this, key)?.value
          if (original !== value && isBinary(original)) refuse(this, key, binaryRefusal(original))
        }
        chain.push(value)
        keys.push(key)
        return value
      }
      case 'undefined':
        if (Array.isArray(this)) refuse(this, key, ['undefined in an array', 'JSON turns it into null. Send null'])
        return value
      case 'function':
      case 'symbol':
        return refuse(this, key, [`a ${typeof value}`, 'JSON cannot carry it. Send data only'])
      case 'bigint':
        return refuse(this, key, ['a BigInt', 'JSON cannot carry it. Convert it to a string or number first'])
      case 'number':
        if (!Number.isFinite(value)) refuse(this, key, [String(value), 'JSON turns it into null'])
        return value
      default:
        return value
    }
  }
  try {
    return JSON.stringify(payload, replacer)
  } catch (error) {
    if (error instanceof InvalidPayloadError) throw error
    if (lastHolder === undefined) lastHolder = {} // the payload's own toJSON threw
    // Nesting deeper than the stack: the chain is cut short, so it cannot be read for a cycle.
    // (Other RangeErrors, from a toJSON or getter, fall through to their own message.)
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      throw new InvalidPayloadError(`Cannot send this payload: it is nested too deeply for JSON (the stack ran out near ${pathTo(lastHolder, lastKey)}). Send flatter data.`, { cause: error })
    }
    // JSON refuses a cycle when it meets, below itself, the object the replacer just passed.
    if (typeof lastValue === 'object' && lastValue !== null && chain.indexOf(lastValue) < chain.length - 1) {
      refuse(lastHolder, lastKey, ['a circular reference', 'the object contains itself. Send a tree of data'])
    }
    // A getter or toJSON that threw, or nesting too deep for the stack.
    const near = pathTo(lastHolder, lastKey)
    throw new InvalidPayloadError(`Cannot send this payload: ${(error as Error).message} (near ${near}).`, { cause: error })
  }
}

/**
 * Whether JSON.stringify would carry `value` faithfully, checked without
 * allocating: only strings, finite numbers, booleans, null, arrays and plain
 * objects (an `Error`, a `Buffer` or a class instance fails on its prototype),
 * and no `toJSON`. `false` sends the caller to the precise path, which accepts
 * `toJSON` and names what it refuses (it also handles cycles: `depth` stops
 * this walk long before a cycle could loop it).
 */
function isPlain(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isFinite(value)
    case 'undefined':
      return depth > 0
    case 'object': {
      if (value === null) return true
      if (depth > 32) return false
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i]
          if (item === undefined || !isPlain(item, depth + 1)) return false
        }
        return true
      }
      const proto: unknown = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return false
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false
      for (const key in value) if (!isPlain((value as Record<string, unknown>)[key], depth + 1)) return false
      return true
    }
    default:
      return false
  }
}

/**
 * Serialises one payload to JSON text, or refuses it with an
 * {@link InvalidPayloadError} that names the path of the culprit
 * (`payload.items[3]`, `payload["odd key"]`) when JSON would not carry it
 * faithfully.
 *
 * The rule: a payload is made of plain objects (prototype `Object.prototype`
 * or `null`; their own enumerable string-keyed properties are sent), arrays,
 * strings, finite numbers, booleans and `null`. An object with a `toJSON`
 * method is sent as what `toJSON` returns, which must follow the same rule
 * (a `Date` is sent as its ISO string). Everything else is refused: functions,
 * symbols, BigInts, `NaN` and the infinities, `undefined` in an array or as the
 * whole payload, cycles, and objects of any other class (`Map`, `Set`, `Error`,
 * `RegExp`, class instances without `toJSON`), binary data included
 * (`ArrayBuffer`, `DataView`, typed arrays and `Buffer`, whose own `toJSON`
 * would send `{"type":"Buffer","data":[...]}`). Properties whose value is
 * `undefined` are left out, as JSON does.
 *
 * @param limit - the largest body allowed, in bytes: the payload's JSON plus the
 *   two brackets of the one-element array it travels in.
 */
export function encodePayload(payload: unknown, limit: number): string {
  let text: string | undefined
  try {
    text = isPlain(payload, 0) ? JSON.stringify(payload) : stringifyFaithfully(payload)
  } catch (error) {
    // stringifyFaithfully names its faults; this is a getter that threw during the check.
    if (error instanceof InvalidPayloadError) throw error
    throw new InvalidPayloadError(`Cannot send this payload: ${(error as Error).message}`, { cause: error })
  }
  if (text === undefined) throw new InvalidPayloadError('Cannot send undefined as a payload: JSON has no undefined.')
  // The cheap length check first: UTF-8 takes at least one byte per UTF-16 unit.
  checkBodySize(text, limit)
  return text
}

/**
 * Throws {@link MessageTooLargeError} when one encoded payload, in the
 * one-element array it travels in, is over `limit` bytes. Counts bytes only
 * when the text is long enough to matter (UTF-8 takes at most 3 bytes per
 * UTF-16 unit).
 */
export function checkBodySize(json: string, limit: number): void {
  if (json.length + 2 <= limit / 3) return
  const size = Buffer.byteLength(json, 'utf8') + 2
  if (size > limit) {
    throw new MessageTooLargeError(
      `The payload encodes to ${size} bytes, over the limit of ${limit}: the smaller of this node's maxMessageSize and what its relay or server takes (the relay's maxMessageSize, a NATS server's max_payload). Send less data, or raise that limit (maxMessageSize on every node, max_payload on the NATS servers).`,
      size,
      limit
    )
  }
}
