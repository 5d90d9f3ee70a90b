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
 * What a topic says is in topics.ts; what a payload may hold, and how it is
 * checked on the way in, in payload.ts.
 *
 * @module
 */
import { isUtf8 } from 'node:buffer'
import { ProtocolError } from './errors'
import { MAX_TOPIC_BYTES, parseGroupTopic, parseRequestTopic, parseResponderTopic, REPLY_PREFIX, RESERVED_PREFIX, topicFrame } from './topics'

/** The protocol version this codec writes and the only one it reads. */
export const PROTOCOL_VERSION = 1

/**
 * The largest topic or header frame, in bytes (docs/PROTOCOL.md section 11):
 * the room the sockets allow beyond `maxMessageSize`. {@link decode} refuses a
 * longer one as malformed.
 */
export const MAX_ENVELOPE_BYTES = 4096

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
  /** For a durable group's events: the engine's handle of each payload, handed back when it is finished. */
  receipts?: string[]
  /** For a durable group's events: how many times each payload was delivered (1 the first time). */
  deliveries?: number[]
}

/** The reply to a request, published on the requester's reply topic. */
export interface ReplyMessage {
  kind: 'r'
  topic: string
  request: string
  ok: boolean
  /** The result when `ok`, else `{ name, message }` of the remote error. */
  value: unknown
  /** The relay's answer that no responder is registered for the request's signal. */
  noResponders?: boolean
}

/** A readiness probe, or a heartbeat from the relay. */
export interface ControlMessage {
  kind: 'p' | 'h'
  topic: string
  /** The relay's `maxMessageSize` in bytes, when the relay announces it (header field `m`). */
  limit?: number
  /** The relay drops for slow listeners (header field `d`: 1): senders then mark their streams' ends. */
  drop?: boolean
}

/**
 * The relay's flow control for one sending node, on its reply topic: stop
 * sending for `hold` milliseconds (renewed while the relay still holds too many
 * of its messages for a slow listener), or, with `hold` 0, go on at once.
 */
export interface FlowMessage {
  kind: 'x'
  topic: string
  /** How long the node may wait before it sends again, in milliseconds; 0 to go on now. */
  hold: number
}

/** Any decoded message. */
export type Message = EventMessage | ReplyMessage | ControlMessage | FlowMessage

/** Frames as they go to a socket (strings are sent as UTF-8) or come from one (always Buffers). */
export type Frames = (Buffer | string)[]

const NUL = 0

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

/** The relay's reply to request `request` when nobody responds to `signal`, on the requester's reply topic `topic`. */
export function encodeNoResponders(topic: string, request: string, signal: string): Frames {
  const head = JSON.stringify({ v: PROTOCOL_VERSION, k: 'r', i: request, ok: false, x: 'no-responders' })
  return [topicFrame(topic), head, JSON.stringify([{ name: 'NoRespondersError', message: `No responder for "${signal}".` }])]
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

/** Optional header fields of a probe or heartbeat. */
export interface ControlFields {
  /** The relay's `maxMessageSize` in bytes (header field `m`): a positive safe integer. */
  limit?: number
  /** The relay's delivery mode is drop (header field `d`: 1). */
  drop?: boolean
}

/**
 * Builds a probe (`p`) or heartbeat (`h`) on `topic`. A relay passes
 * `{ limit: maxMessageSize }` to announce its limit.
 *
 * @throws RangeError if `fields.limit` is not a positive safe integer.
 */
export function encodeControl(kind: 'p' | 'h', topic: string, fields?: ControlFields): Frames {
  const limit = fields?.limit
  if (limit === undefined && fields?.drop !== true) return [topicFrame(topic), CONTROL_HEADERS[kind], EMPTY_BODY]
  if (limit !== undefined && !isLimit(limit)) throw new RangeError(`The announced limit must be a positive safe integer, got ${String(limit)}.`)
  return [topicFrame(topic), controlHeader(kind, fields), EMPTY_BODY]
}

/** The header of a probe or heartbeat that carries the relay's announcements. */
export function controlHeader(kind: 'p' | 'h', fields: ControlFields = {}): string {
  const head: Record<string, unknown> = { v: PROTOCOL_VERSION, k: kind }
  if (fields.limit !== undefined) head.m = fields.limit
  if (fields.drop === true) head.d = 1
  return JSON.stringify(head)
}

/** Builds the relay's flow control for the node whose reply topic is `topic`: hold for `hold` ms, or go on (0). */
export function encodeFlow(topic: string, hold: number): Frames {
  return [topicFrame(topic), JSON.stringify({ v: PROTOCOL_VERSION, k: 'x', w: hold }), EMPTY_BODY]
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

/**
 * Whether `value`, parsed JSON, holds a number JSON.parse turned into ±Infinity
 * (`1e999`, or an integer of 310 digits or more). Measured cheaper than every
 * alternative: a few percent of JSON.parse on a normal batch, where a reviver
 * costs four times the parse and a regular expression prefilter that finds long
 * digit runs costs more than this walk.
 */
function holdsInfinity(value: unknown): boolean {
  // A loop, not recursion: a body may nest deeper than the stack allows.
  const stack: object[] = []
  let item: unknown = value
  for (;;) {
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) {
        const element: unknown = item[i]
        if (typeof element === 'object') {
          if (element !== null) stack.push(element)
        } else if (typeof element === 'number' && !Number.isFinite(element)) return true
      }
    } else {
      for (const key in item as object) {
        const element: unknown = (item as Record<string, unknown>)[key]
        if (typeof element === 'object') {
          if (element !== null) stack.push(element)
        } else if (typeof element === 'number' && !Number.isFinite(element)) return true
      }
    }
    item = stack.pop()
    if (item === undefined) return false
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
const isLimit = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0
/** A flow-control hold in milliseconds: a minute at most, so a lost "go on" cannot stall a sender for long. */
const isHold = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 60_000

/**
 * Decodes the frames of one message. Throws a {@link ProtocolError} that
 * names the fault for anything that is not a well-formed version-1 message,
 * including a topic or header frame over {@link MAX_ENVELOPE_BYTES} and a body
 * number too large for a double (which JSON.parse would read as Infinity).
 * Nothing in a message is evaluated; JSON values are returned as parsed.
 */
export function decode(frames: Buffer[]): Message {
  if (frames.length !== 3) fail(`expected 3 frames, got ${frames.length}`)
  const [topicBuf, headBuf, bodyBuf] = frames as [Buffer, Buffer, Buffer]
  if (topicBuf.length > MAX_ENVELOPE_BYTES) fail(`topic frame is longer than ${MAX_ENVELOPE_BYTES} bytes`)
  if (headBuf.length > MAX_ENVELOPE_BYTES) fail(`header frame is longer than ${MAX_ENVELOPE_BYTES} bytes`)
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
  // JSON.parse reads 1e999 as Infinity, which JSON cannot carry: the sender meant something else.
  if (holdsInfinity(body)) fail('body frame holds a number too large for a double (it would read as Infinity)')

  const kind = header.k
  switch (kind) {
    case 'e':
    case 'q': {
      let signal = topic
      let group: string | undefined
      if (topic.startsWith(RESERVED_PREFIX)) {
        // A group member's share, a request on its way to the relay, or one handed to a responder.
        const parts = parseGroupTopic(topic)
        const requested = kind === 'q' ? (parseRequestTopic(topic) ?? parseResponderTopic(topic)?.[0]) : undefined
        if (parts !== undefined) [signal, group] = parts
        else if (requested !== undefined) signal = requested
        else fail(`${kind === 'q' ? 'requests' : 'events'} may not use the reserved topic "${topic}"`)
      }
      // An event message with no payload is a sender's mark of where its stream stands (PROTOCOL.md section 5).
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
    case 'r': {
      if (body.length !== 1) fail('a reply carries exactly one value')
      const reply: ReplyMessage = {
        kind: 'r',
        topic,
        request: field(header, 'i', isString, 'a non-empty string'),
        ok: field(header, 'ok', isBoolean, 'a boolean'),
        value: body[0]
      }
      // Set by the relay when nobody responds to the request's signal.
      if (header.x === 'no-responders') reply.noResponders = true
      return reply
    }
    case 'p':
    case 'h': {
      const message: ControlMessage = { kind, topic }
      if (header.m !== undefined) message.limit = field(header, 'm', isLimit, 'a positive integer')
      if (header.d === 1) message.drop = true
      return message
    }
    case 'x':
      if (!topic.startsWith(REPLY_PREFIX)) fail(`flow control may only use a reply topic, not "${topic}"`)
      return { kind, topic, hold: field(header, 'w', isHold, 'an integer from 0 to 60000') }
    default:
      return fail(`unknown message kind ${JSON.stringify(kind) ?? 'undefined'}`)
  }
}

/**
 * The largest frame a subscriber sends upstream: a subscription (a topic) or a
 * group report (a group topic, JSON-escaped once more, and a few fields).
 */
export const MAX_UPSTREAM_BYTES = MAX_TOPIC_BYTES * 2 + 128

/** A work-group member's capacity report: how many unfinished events it takes, and how many it finished. */
export interface GroupState {
  /** The member's group topic (`$g[signal, group, node]`). */
  topic: string
  /** Most unfinished events it takes at a time (its `concurrency`). */
  capacity: number
  /** Events it has finished since it joined (cumulative, so a repeated or late report does no harm). */
  done: number
}

/**
 * A group report, `{"v":1,"k":"c",...}`: the one frame a member sends upstream
 * on its publisher connection (through an XSUB socket, so it never queues
 * behind events; its first byte, `{`, tells the relay it is not a
 * subscription), and the header of the same report sent on the data path on
 * topic `GROUP_STATE_TOPIC` (topics.ts).
 */
export function encodeGroupState(state: GroupState): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, k: 'c', g: state.topic, c: state.capacity, d: state.done })
}

/** The group state in an upstream frame, or `undefined` if the frame is not a valid one. */
export function decodeGroupState(frame: Buffer): GroupState | undefined {
  if (frame.length > MAX_UPSTREAM_BYTES || frame[0] !== 0x7b) return undefined
  let value: unknown
  try {
    value = JSON.parse(frame.toString('utf8'))
  } catch {
    return undefined
  }
  const { v, k, g, c, d } = (value ?? {}) as Record<string, unknown>
  if (v !== PROTOCOL_VERSION || k !== 'c' || typeof g !== 'string' || parseGroupTopic(g) === undefined) return undefined
  if (!Number.isSafeInteger(c) || (c as number) < 1 || !Number.isSafeInteger(d) || (d as number) < 0) return undefined
  return { topic: g, capacity: c as number, done: d as number }
}
