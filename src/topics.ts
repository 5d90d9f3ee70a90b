/**
 * Topics: the first frame of every message, and the subscription prefix a
 * socket matches it by. A signal's topic is its name; the protocol's own
 * topics start with `$` and a letter that tells their kind (docs/PROTOCOL.md).
 * Pure functions, no sockets; the relay reads a raw frame's kind with
 * {@link topicKind} without decoding it.
 *
 * @module
 */

/** Signal names starting with this character are reserved for the protocol. */
export const RESERVED_PREFIX = '$'

/**
 * The longest topic a client may subscribe to, NUL included, in UTF-8 bytes: what
 * the relay accepts as a subscription (a group topic is the longest kind).
 */
export const MAX_TOPIC_BYTES = 2048

/** Topic of the relay's heartbeats. */
export const HEARTBEAT_TOPIC = '$h'

/** Topic of a group report sent on the data path (header: the report; body: `[]`). The relay consumes it. */
export const GROUP_STATE_TOPIC = '$c'

/**
 * Prefix of work-group topics. A group member subscribes to
 * `$g["<signal>","<group>","<node id>"]`; the relay sends each event of the
 * signal to one member per group, on that member's topic.
 */
const GROUP_PREFIX = '$g'

/** Prefix of request topics: a requester sends `$q["<signal>"]`, which the relay hands to one responder. */
const REQUEST_PREFIX = '$q'
/** Prefix of responder topics: a responder subscribes to `$s["<signal>","<node id>"]`. */
const RESPONDER_PREFIX = '$s'

/** The prefix of every node's private reply topic. */
export const REPLY_PREFIX = '$r.'

/** The prefix of readiness probe topics, `$p.<node id>.<n>`. */
const PROBE_PREFIX = '$p.'

/** The byte after `$` in a topic frame, by kind of internal topic: see {@link topicKind}. */
export const TopicKind = {
  heartbeat: HEARTBEAT_TOPIC.charCodeAt(1),
  groupState: GROUP_STATE_TOPIC.charCodeAt(1),
  group: GROUP_PREFIX.charCodeAt(1),
  request: REQUEST_PREFIX.charCodeAt(1),
  responder: RESPONDER_PREFIX.charCodeAt(1),
  reply: REPLY_PREFIX.charCodeAt(1),
  probe: PROBE_PREFIX.charCodeAt(1)
} as const

const RESERVED_BYTE = RESERVED_PREFIX.charCodeAt(0)

/**
 * The kind of the internal topic in a raw topic frame (one of {@link TopicKind}),
 * or 0 for a signal's topic: read from two bytes, without decoding the frame.
 */
export function topicKind(frame: Buffer): number {
  return frame[0] === RESERVED_BYTE ? (frame[1] ?? 0) : 0
}

/** The topic on which the relay hands `node` its share of `signal` for `group`. */
export function groupTopic(signal: string, group: string, node: string): string {
  return GROUP_PREFIX + JSON.stringify([signal, group, node])
}

/** The topic on which `node` receives the replies to its requests. */
export function replyTopic(node: string): string {
  return REPLY_PREFIX + node
}

/** The topic a request for `signal` is sent on. */
export function requestTopic(signal: string): string {
  return REQUEST_PREFIX + JSON.stringify([signal])
}

/** The topic on which the relay hands `node` the requests for `signal`. */
export function responderTopic(signal: string, node: string): string {
  return RESPONDER_PREFIX + JSON.stringify([signal, node])
}

/** Whether `topic` is a responder topic (a request the relay handed to one of a node's responders). */
export function isResponderTopic(topic: string): boolean {
  return topic.startsWith(RESPONDER_PREFIX)
}

/** The topic of `node`'s probe number `count`. */
export function probeTopic(node: string, count: number): string {
  return `${PROBE_PREFIX}${node}.${count}`
}

/**
 * Who asked what, read from a request's topic and header frames (all the relay
 * reads of a request, to answer "no responders"), or `undefined` when the frames
 * name no signal, requester node or request id.
 */
export function requestOrigin(topic: Buffer, header: Buffer): { signal: string; node: string; request: string } | undefined {
  const signal = parseRequestTopic(topic.toString('utf8', 0, topic.length - 1))
  let fields: { n?: unknown; i?: unknown } | undefined
  try {
    fields = JSON.parse(header.toString('utf8')) as { n?: unknown; i?: unknown }
  } catch {
    return undefined
  }
  const { n: node, i: request } = fields ?? {}
  if (signal === undefined || typeof node !== 'string' || typeof request !== 'string' || node === '' || request === '') return undefined
  return { signal, node, request }
}

/** The signal of a request topic, or `undefined` if `topic` is not one. */
export function parseRequestTopic(topic: string): string | undefined {
  const parts = parseTopicParts(topic, REQUEST_PREFIX, 1)
  return parts?.[0]
}

/** `[signal, node]` of a responder topic, or `undefined` if `topic` is not one. */
export function parseResponderTopic(topic: string): [string, string] | undefined {
  return parseTopicParts(topic, RESPONDER_PREFIX, 2) as [string, string] | undefined
}

/** `[signal, group, node]` of a group topic, or `undefined` if `topic` is not one. */
export function parseGroupTopic(topic: string): [string, string, string] | undefined {
  return parseTopicParts(topic, GROUP_PREFIX, 3) as [string, string, string] | undefined
}

function parseTopicParts(topic: string, prefix: string, count: number): string[] | undefined {
  if (!topic.startsWith(prefix + '[')) return undefined
  let parts: unknown
  try {
    parts = JSON.parse(topic.slice(prefix.length))
  } catch {
    return undefined
  }
  if (!Array.isArray(parts) || parts.length !== count || !parts.every((part) => typeof part === 'string' && part.length > 0)) {
    return undefined
  }
  return parts as string[]
}

const topicCache = new Map<string, Buffer>()
/** Most topic frames kept: a program that invents signal names without end must not grow the cache without end. */
const TOPIC_CACHE_LIMIT = 1024

/** The topic frame (and subscription prefix) for a signal or internal topic. */
export function topicFrame(name: string): Buffer {
  let frame = topicCache.get(name)
  if (frame === undefined) {
    frame = Buffer.from(name + '\0', 'utf8')
    if (topicCache.size >= TOPIC_CACHE_LIMIT) topicCache.clear()
    topicCache.set(name, frame)
  }
  return frame
}
