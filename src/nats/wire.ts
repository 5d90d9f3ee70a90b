/**
 * pyvent's messages as NATS messages: the subject names the kind, signal and
 * sender (subjects.ts), a few headers carry the rest of the header frame of
 * docs/PROTOCOL.md, and the body is the same JSON array. Decoding goes through
 * the codec's own checks, so a NATS message is malformed exactly when the
 * equivalent relay message would be.
 *
 * @module
 */
import type { MsgHdrs } from '@nats-io/transport-node'
import { decode, EventMessage, PROTOCOL_VERSION, ReplyMessage } from '../codec'
import { parseEventSubject } from './subjects'

/** Header names (exact case: NATS headers are case-sensitive on the wire). */
export const H_VERSION = 'Pyvent-V'
export const H_NODE = 'Pyvent-Node'
export const H_SEQ = 'Pyvent-Seq'
export const H_TIME = 'Pyvent-Time'
export const H_OK = 'Pyvent-Ok'
/** Dead letters: the last error, the deliveries, when it died, the group. */
export const H_ERROR = 'Pyvent-Error'
export const H_DELIVERIES = 'Pyvent-Deliveries'
export const H_DEAD_AT = 'Pyvent-Dead-At'
export const H_GROUP = 'Pyvent-Group'

/** The one part of a received NATS message this module reads. */
export interface WireMsg {
  subject: string
  reply?: string | undefined
  data: Uint8Array
  headers?: MsgHdrs | undefined
}

/** What fills a message's headers (the caller makes the MsgHdrs: only it has the client package). */
export type HeaderFields = [name: string, value: string][]

/** Headers of an event batch or request. */
export function eventHeaders(node: string, seq: number, time: number): HeaderFields {
  return [
    [H_VERSION, String(PROTOCOL_VERSION)],
    [H_NODE, node],
    [H_SEQ, String(seq)],
    [H_TIME, String(time)]
  ]
}

/** Headers of a reply. */
export function replyHeaders(ok: boolean): HeaderFields {
  return [
    [H_VERSION, String(PROTOCOL_VERSION)],
    [H_OK, ok ? 'true' : 'false']
  ]
}

/** An integer header as a number; anything else as it is, for the codec to refuse. */
function integer(text: string | undefined): unknown {
  return text !== undefined && /^\d{1,16}$/.test(text) ? Number(text) : text
}

function number(text: string | undefined): unknown {
  return text !== undefined && /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text
}

function bodyOf(msg: WireMsg): Buffer {
  return Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)
}

/**
 * Decodes an event batch or a request. `request` (for a request): the id under
 * which its reply goes back, the message's reply subject. Throws a
 * `ProtocolError` naming the fault.
 */
export function decodeEvent(msg: WireMsg): EventMessage {
  const parsed = parseEventSubject(msg.subject)
  if (parsed === undefined) throw new TypeError(`"${msg.subject}" is not a pyvent event or request subject`)
  const h = msg.headers
  const head: Record<string, unknown> = {
    v: integer(h?.get(H_VERSION)),
    k: parsed.kind,
    s: parsed.sender,
    n: h?.get(H_NODE) || undefined,
    q: integer(h?.get(H_SEQ)),
    t: number(h?.get(H_TIME))
  }
  if (parsed.kind === 'q') head.i = msg.reply
  const message = decode([Buffer.from(parsed.signal + '\0'), Buffer.from(JSON.stringify(head)), bodyOf(msg)])
  return message as EventMessage
}

/** Decodes the reply to request `request`. */
export function decodeReply(msg: WireMsg, request: string): ReplyMessage {
  const h = msg.headers
  const ok = h?.get(H_OK)
  const head = { v: integer(h?.get(H_VERSION)), k: 'r', i: request, ok: ok === 'true' ? true : ok === 'false' ? false : ok }
  return decode([Buffer.from('r\0'), Buffer.from(JSON.stringify(head)), bodyOf(msg)]) as ReplyMessage
}

/** NATS's own "no responders" answer to a request: a 503 status and no body. */
export function isNoResponders(msg: WireMsg): boolean {
  return msg.data.length === 0 && msg.headers?.code === 503
}
