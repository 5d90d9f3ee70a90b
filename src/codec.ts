/**
 * The wire codec: pure functions from values to frames and back. No sockets,
 * no state. The protocol is described in docs/PROTOCOL.md; this file is its
 * reference implementation.
 *
 * Every message has exactly three frames:
 *
 * 1. topic: the signal (or an internal `$` topic) in UTF-8, then one NUL byte.
 *    The NUL ends the name, so a subscription to `order\0` never matches
 *    `order-food\0` (ZeroMQ matches subscriptions by prefix).
 * 2. header: a UTF-8 JSON object, `{"v":1,"k":<kind>,...}`.
 * 3. body: a UTF-8 JSON array (the payloads of a batch, one element per event).
 *
 * @module
 */
import { isUtf8 } from 'node:buffer'
import { InvalidPayloadError, MessageTooLargeError, ProtocolError } from './errors'

/** The protocol version this codec writes and the only one it reads. */
export const PROTOCOL_VERSION = 1

/** Signal names starting with this character are reserved for the protocol. */
const RESERVED_PREFIX = '$'

/** The longest signal or sender name, in UTF-8 bytes. */
const MAX_NAME_BYTES = 255

/** The longest topic (a group topic is the longest kind), in UTF-8 bytes. */
export const MAX_TOPIC_BYTES = 2048

/** Topic of the relay's heartbeats. */
export const HEARTBEAT_TOPIC = '$h'

/**
 * Prefix of work-group topics. A group member subscribes to
 * `$g["<signal>","<group>","<node id>"]`; the relay sends each event of the
 * signal to one member per group, on that member's topic.
 */
const GROUP_PREFIX = '$g'

/** The topic on which the relay hands `node` its share of `signal` for `group`. */
export function groupTopic(signal: string, group: string, node: string): string {
  return GROUP_PREFIX + JSON.stringify([signal, group, node])
}

/** `[signal, group, node]` of a group topic, or `undefined` if `topic` is not one. */
export function parseGroupTopic(topic: string): [string, string, string] | undefined {
  if (!topic.startsWith(GROUP_PREFIX + '[')) return undefined
  let parts: unknown
  try {
    parts = JSON.parse(topic.slice(GROUP_PREFIX.length))
  } catch {
    return undefined
  }
  if (!Array.isArray(parts) || parts.length !== 3 || !parts.every((part) => typeof part === 'string' && part.length > 0)) {
    return undefined
  }
  return parts as [string, string, string]
}


/** A batch of events (`e`) or one request (`q`). */
export interface EventMessage {
  kind: 'e' | 'q'
  /** The topic it arrived on: the signal, or a group topic for a work-group member's share. */
  topic: string
  signal: string
  /** The work group this copy was routed to, if any. */
  group?: string
  /** The sender name (dot-separated, filtered by prefix). */
  sender: string
  /** The sending node's unique id. */
  node: string
  /** Sequence number of the first payload in the sender's (node, signal) stream. */
  seq: number
  /** Milliseconds since the epoch when the sender queued the batch. */
  time: number
  /** Request id, for `q`. */
  request?: string
  payloads: unknown[]
}

/** The reply to a request, published on the requester's reply topic. */
export interface ReplyMessage {
  kind: 'r'
  topic: string
  request: string
  ok: boolean
  /** The result when `ok`, else `{ name, message }` of the remote error. */
  value: unknown
}

/** A readiness probe, or a heartbeat from the relay. */
export interface ControlMessage {
  kind: 'p' | 'h'
  topic: string
}

/** Any decoded message. */
export type Message = EventMessage | ReplyMessage | ControlMessage

/** Frames as they go to a socket (strings are sent as UTF-8) or come from one (always Buffers). */
export type Frames = (Buffer | string)[]

const NUL = 0
const topicCache = new Map<string, Buffer>()
const checkedNames = new Set<string>()
const TOPIC_CACHE_LIMIT = 1024

/** The topic frame (and subscription prefix) for a signal or internal topic. */
export function topicFrame(name: string): Buffer {
  let frame = topicCache.get(name)
  if (frame === undefined) {
    frame = Buffer.from(name + '\0', 'utf8')
    // A program that invents signal names without end must not grow this cache without end.
    if (topicCache.size >= TOPIC_CACHE_LIMIT) topicCache.clear()
    topicCache.set(name, frame)
  }
  return frame
}

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
    throw new TypeError(`The ${what} must be a string, got ${describe(name)}.`)
  }
  if (name.length === 0) throw new TypeError(`The ${what} must not be empty.`)
  if (name.includes('\0')) throw new TypeError(`The ${what} must not contain a NUL character.`)
  if (!internal && name.startsWith(RESERVED_PREFIX)) {
    throw new TypeError(
      `The ${what} "${name}" starts with "${RESERVED_PREFIX}", which is reserved for pyvent's own messages; choose another name.`
    )
  }
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    throw new TypeError(`The ${what} is longer than ${MAX_NAME_BYTES} bytes of UTF-8.`)
  }
  if (!internal) {
    if (checkedNames.size >= TOPIC_CACHE_LIMIT) checkedNames.clear()
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

function faithful(this: unknown, key: string, value: unknown): unknown {
  if (value instanceof Map || value instanceof Set) {
    throw new InvalidPayloadError(`Cannot send a ${value.constructor.name} (at "${key}"): JSON turns it into {}. Send an array or an object.`)
  }
  switch (typeof value) {
    case 'undefined':
      if (Array.isArray(this)) {
        throw new InvalidPayloadError(`Cannot send undefined in an array (at index ${key}): JSON turns it into null.`)
      }
      return value
    case 'function':
    case 'symbol':
      throw new InvalidPayloadError(
        `Cannot send a ${typeof value} (at "${key}"): JSON cannot carry it. Send data only.`
      )
    case 'bigint':
      throw new InvalidPayloadError(
        `Cannot send a BigInt (at "${key}"): JSON cannot carry it. Convert it to a string or number first.`
      )
    case 'number':
      if (!Number.isFinite(value)) {
        throw new InvalidPayloadError(`Cannot send ${String(value)} (at "${key}"): JSON would turn it into null.`)
      }
      return value
    default:
      return value
  }
}

/**
 * Whether JSON.stringify would carry `value` faithfully, checked without
 * allocating: only plain JSON types, finite numbers, and no `toJSON`. `false`
 * sends the caller to the slower, precise path (which also handles cycles:
 * `depth` stops the walk long before a cycle could loop it).
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
      if (value instanceof Map || value instanceof Set) return false
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false
      for (const key in value) if (!isPlain((value as Record<string, unknown>)[key], depth + 1)) return false
      return true
    }
    default:
      return false
  }
}

/**
 * Serialises one payload to JSON text, refusing what JSON would silently
 * change: functions, symbols, BigInts, cycles, NaN and the infinities.
 * Properties whose value is `undefined` are left out, as JSON does.
 *
 * @param limit - the largest body allowed, in bytes: the payload's JSON plus the
 *   two brackets of the one-element array it travels in.
 */
export function encodePayload(payload: unknown, limit: number): string {
  let text: string | undefined
  try {
    text = isPlain(payload, 0) ? JSON.stringify(payload) : JSON.stringify(payload, faithful)
  } catch (error) {
    if (error instanceof InvalidPayloadError) throw error
    throw new InvalidPayloadError(`Cannot send this payload: ${(error as Error).message}`, { cause: error })
  }
  if (text === undefined) throw new InvalidPayloadError('Cannot send undefined as a payload: JSON has no undefined.')
  // The cheap length check first: UTF-8 takes at least one byte per UTF-16 unit.
  if (text.length + 2 > limit / 3) {
    const size = Buffer.byteLength(text, 'utf8') + 2
    if (size > limit) {
      throw new MessageTooLargeError(
        `The payload encodes to ${size} bytes, over the maxMessageSize of ${limit}; send less data or raise maxMessageSize on every node.`,
        size,
        limit
      )
    }
  }
  return text
}

/** Header of an event batch or request (the sending node's id travels beside it). */
export interface EventHeader {
  kind: 'e' | 'q'
  sender: string
  seq: number
  time: number
  request?: string
}

/** Builds the frames of an event batch (or request) from already-encoded payloads. */
export function encodeEvents(topic: Buffer, header: EventHeader, node: string, payloads: string[]): Frames {
  const head: Record<string, unknown> = {
    v: PROTOCOL_VERSION,
    k: header.kind,
    s: header.sender,
    n: node,
    q: header.seq,
    t: header.time
  }
  if (header.request !== undefined) head.i = header.request
  // Strings, not Buffers: zeromq copies them straight into its message, with no
  // external Buffer left for the garbage collector.
  return [topic, JSON.stringify(head), '[' + payloads.join(',') + ']']
}

/** Builds the frames of a reply to request `request`, published on `topic`. */
export function encodeReply(topic: string, request: string, ok: boolean, encodedValue: string): Frames {
  const head = JSON.stringify({ v: PROTOCOL_VERSION, k: 'r', i: request, ok })
  return [topicFrame(topic), head, '[' + encodedValue + ']']
}

const EMPTY_BODY = Buffer.from('[]')
const CONTROL_HEADERS = {
  p: Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, k: 'p' })),
  h: Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, k: 'h' }))
}

/** Builds a probe (`p`) or heartbeat (`h`) on `topic`. */
export function encodeControl(kind: 'p' | 'h', topic: string): Frames {
  return [topicFrame(topic), CONTROL_HEADERS[kind], EMPTY_BODY]
}

function fail(reason: string): never {
  throw new ProtocolError(reason)
}

function parseJson(frame: Buffer, what: string): unknown {
  if (!isUtf8(frame)) fail(`${what} is not valid UTF-8`)
  try {
    return JSON.parse(frame.toString('utf8'))
  } catch {
    return fail(`${what} is not valid JSON`)
  }
}

function field<T>(head: Record<string, unknown>, key: string, check: (value: unknown) => value is T, what: string): T {
  const value = head[key]
  if (!check(value)) fail(`header field "${key}" must be ${what}`)
  return value
}

const isString = (value: unknown): value is string => typeof value === 'string' && value.length > 0
const isSeq = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0
const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)
const isBoolean = (value: unknown): value is boolean => typeof value === 'boolean'

/**
 * Decodes the frames of one message. Throws a {@link ProtocolError} that
 * names the fault for anything that is not a well-formed version-1 message.
 * Nothing in a message is evaluated; JSON values are returned as parsed.
 */
export function decode(frames: Buffer[]): Message {
  if (frames.length !== 3) fail(`expected 3 frames, got ${frames.length}`)
  const [topicBuf, headBuf, bodyBuf] = frames as [Buffer, Buffer, Buffer]
  const end = topicBuf.length - 1
  if (end < 1 || topicBuf[end] !== NUL) fail('topic frame must be a non-empty name followed by one NUL byte')
  if (topicBuf.indexOf(NUL) !== end) fail('topic frame contains a NUL byte inside the name')
  if (!isUtf8(topicBuf)) fail('topic frame is not valid UTF-8')
  const topic = topicBuf.toString('utf8', 0, end)

  const head = parseJson(headBuf, 'header frame')
  if (typeof head !== 'object' || head === null || Array.isArray(head)) fail('header frame must be a JSON object')
  const header = head as Record<string, unknown>
  if (header.v !== PROTOCOL_VERSION) fail(`unsupported protocol version ${JSON.stringify(header.v) ?? 'undefined'}`)

  const body = parseJson(bodyBuf, 'body frame')
  if (!Array.isArray(body)) fail('body frame must be a JSON array')

  const kind = header.k
  switch (kind) {
    case 'e':
    case 'q': {
      let signal = topic
      let group: string | undefined
      if (topic.startsWith(RESERVED_PREFIX)) {
        const parts = parseGroupTopic(topic)
        if (parts === undefined) fail(`events may not use the reserved topic "${topic}"`)
        ;[signal, group] = parts
      }
      if (body.length === 0) fail('an event message must carry at least one payload')
      if (kind === 'q' && body.length !== 1) fail('a request carries exactly one payload')
      const message: EventMessage = {
        kind,
        topic,
        signal,
        sender: field(header, 's', isString, 'a non-empty string'),
        node: field(header, 'n', isString, 'a non-empty string'),
        seq: field(header, 'q', isSeq, 'a non-negative integer'),
        time: field(header, 't', isTime, 'a number'),
        payloads: body
      }
      if (kind === 'q') message.request = field(header, 'i', isString, 'a non-empty string')
      if (group !== undefined) message.group = group
      return message
    }
    case 'r':
      if (body.length !== 1) fail('a reply carries exactly one value')
      return {
        kind: 'r',
        topic,
        request: field(header, 'i', isString, 'a non-empty string'),
        ok: field(header, 'ok', isBoolean, 'a boolean'),
        value: body[0]
      }
    case 'p':
    case 'h':
      return { kind, topic }
    default:
      return fail(`unknown message kind ${JSON.stringify(kind) ?? 'undefined'}`)
  }
}
