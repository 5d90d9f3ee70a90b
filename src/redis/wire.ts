/**
 * pyvent's layout on Redis (docs/PROTOCOL.md, section "Redis"): the channels,
 * lists and streams it uses, and the one JSON message format they all carry.
 * Pure functions, no connections.
 *
 * An event, as PUBLISHed, pushed to a work group's list or added to a stream
 * (field `m`), is one JSON object a person can type in redis-cli:
 * `{"v":1,"s":"<sender>","n":"<node>","t":<ms>,"q":<seq>,"p":[<payload>,...]}`.
 * A request adds `"i":"<request id>"`; a reply is `{"v":1,"i":"<id>","ok":true,"p":[<value>]}`.
 *
 * @module
 */
import type { EventMessage } from '../codec'

/** The protocol version of every message. */
export const WIRE_VERSION = 1

/** Every key and channel pyvent uses starts with this. */
export const PREFIX = 'pyvent:'

/** The channel a signal's events are PUBLISHed on. */
export const eventChannel = (signal: string): string => `${PREFIX}e:${signal}`
/** The pattern of every event channel (the Any listener). */
export const EVENT_PATTERN = `${PREFIX}e:*`
/** The signal of an event channel, or `undefined`. */
export const channelSignal = (channel: string): string | undefined =>
  channel.startsWith(`${PREFIX}e:`) && channel.length > PREFIX.length + 2 ? channel.slice(PREFIX.length + 2) : undefined

/** The stream a signal's events are added to while a durable group exists (XGROUP CREATE ... MKSTREAM makes it). */
export const streamKey = (signal: string): string => `${PREFIX}s:${signal}`
/** The set of a signal's plain work groups (members: {@link groupId}). */
export const groupsKey = (signal: string): string => `${PREFIX}g:${signal}`
/** A group's name on the wire: `["<signal>","<group>"]`, unambiguous whatever the names hold. */
export const groupId = (signal: string, group: string): string => JSON.stringify([signal, group])
/** A plain group's list of events not yet taken ({@link groupId} after `pyvent:gq:`). */
export const groupList = (id: string): string => `${PREFIX}gq:${id}`
/** The channel that wakes a plain group's members. */
export const groupWake = (id: string): string => `${PREFIX}gw:${id}`
/** A durable group's last handler errors, by stream entry id. */
export const errorsKey = (id: string): string => `${PREFIX}x:${id}`
/** A durable group's dead-letter stream. */
export const deadKey = (id: string): string => `${PREFIX}dl:${id}`
/** The list of a signal's requests not yet taken by a responder. */
export const requestList = (signal: string): string => `${PREFIX}q:${signal}`
/** The channel that wakes a signal's responders. */
export const requestWake = (signal: string): string => `${PREFIX}w:${signal}`
/** The channel a node's replies are PUBLISHed on. */
export const replyChannel = (node: string): string => `${PREFIX}r:${node}`

/**
 * The start of an event message, up to the sequence number: the sender script
 * appends `<seq>,"p":[...]}` once for the batch and once per event.
 */
export function eventHead(sender: string, node: string, time: number, request?: string): string {
  const id = request === undefined ? '' : `"i":${JSON.stringify(request)},`
  return `{"v":${WIRE_VERSION},"s":${JSON.stringify(sender)},"n":${JSON.stringify(node)},"t":${time},${id}"q":`
}

/** A whole event (or request) message from its head. */
export function eventBody(head: string, seq: number, payloads: string[]): string {
  return `${head}${seq},"p":[${payloads.join(',')}]}`
}

/** A reply message; `json` is the encoded value (or `{name, message}` when `ok` is false). */
export function replyBody(request: string, ok: boolean, json: string): string {
  return `{"v":${WIRE_VERSION},"i":${JSON.stringify(request)},"ok":${ok},"p":[${json}]}`
}

/** The fields of an event message, as read from the wire. */
export type WireEvent = Pick<EventMessage, 'sender' | 'node' | 'seq' | 'time' | 'payloads' | 'request'>

const isName = (value: unknown): value is string => typeof value === 'string' && value.length > 0

function parse(text: string): Record<string, unknown> | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const fields = value as Record<string, unknown>
  return fields.v === WIRE_VERSION ? fields : undefined
}

/**
 * Reads an event (or request) message, or `undefined` if it is not a valid
 * one. `t` may be left out by a person typing one (it reads as now).
 */
export function decodeEvent(text: string): WireEvent | undefined {
  const fields = parse(text)
  if (fields === undefined) return undefined
  const { s, n, q, t, p, i } = fields
  if (!isName(s) || !isName(n) || !Number.isSafeInteger(q) || (q as number) < 0) return undefined
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t))) return undefined
  if (!Array.isArray(p) || p.length === 0) return undefined
  if (i !== undefined && !isName(i)) return undefined
  const event: WireEvent = { sender: s, node: n, seq: q as number, time: (t as number | undefined) ?? Date.now(), payloads: p }
  if (i !== undefined) event.request = i
  return event
}

/** Reads a reply message, or `undefined`. */
export function decodeReply(text: string): { request: string; ok: boolean; value: unknown } | undefined {
  const fields = parse(text)
  if (fields === undefined) return undefined
  const { i, ok, p } = fields
  if (!isName(i) || typeof ok !== 'boolean' || !Array.isArray(p) || p.length !== 1) return undefined
  return { request: i, ok, value: p[0] }
}
