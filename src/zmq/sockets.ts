/**
 * Every ZeroMQ socket pyvent opens, built from a node's options in one place:
 * the client's Push, Subscriber and report XSubscriber, and the relay's
 * XPublisher and Pull. Also the addressing, the per-frame limit and the
 * ZeroMQ error tests they share.
 *
 * @module
 */
import { Context, Pull, Push, Subscriber, XPublisher, XSubscriber } from 'zeromq'
import { Frames, MAX_ENVELOPE_BYTES, MAX_UPSTREAM_BYTES } from '../codec'
import type { ResolvedOptions } from '../options'

/** ZeroMQ reconnect interval: short, so clients find a new relay soon after a failover. */
const RECONNECT_INTERVAL = 25
/** libzmq's option number of the send high-water mark. */
const ZMQ_SNDHWM = 23
/** Longest pause between two attempts of a polling client to send on a full socket. */
export const MAX_POLL_INTERVAL = 8

/** Whether a ZeroMQ error means "not now" (a full queue, or nothing to receive). */
export function isEAGAIN(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === 'EAGAIN'
}

/** Waits `ms` milliseconds, or until the next turn of the event loop for 0. */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)))

/** Socket options every pyvent socket on these options takes, for the client or the relay side. */
function baseSocketOptions(options: ResolvedOptions, side: 'client' | 'relay'): Record<string, unknown> {
  const base: Record<string, unknown> = { ipv6: isIPv6(options) }
  const curve = options.curve
  if (curve === undefined) return base
  if (side === 'relay') return { ...base, curveServer: true, curveSecretKey: curve.serverSecretKey ?? null, zapDomain: 'pyvent' }
  return { ...base, curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey }
}

/**
 * A client's socket to the relay's pull port. `polling` (a worker thread):
 * sends fail at once with EAGAIN instead of staying pending (see Client).
 */
export function pushSocket(options: ResolvedOptions, polling: boolean): Push {
  return new Push({
    ...baseSocketOptions(options, 'client'),
    sendHighWaterMark: options.highWaterMark,
    ...(polling ? { sendTimeout: 0 } : {}),
    linger: options.linger,
    reconnectInterval: RECONNECT_INTERVAL
  })
}

/** A client's socket from the relay's publisher port. `polling`: receives never stay pending. */
export function subscriberSocket(options: ResolvedOptions, polling: boolean): Subscriber {
  const sub = new Subscriber({
    ...baseSocketOptions(options, 'client'),
    receiveHighWaterMark: options.highWaterMark,
    maxMessageSize: frameLimit(options),
    // A receive that sees nothing for this long means the relay is silent (see Client's receive loop).
    receiveTimeout: polling ? 0 : options.relayTimeout,
    reconnectInterval: RECONNECT_INTERVAL,
    linger: 0
  })
  // Subscriptions travel to the relay as messages on the subscriber's outbound
  // queue, which ZeroMQ caps at 1,000 by default and then drops silently. No cap:
  // every subscription arrives, however many are made at once. (zeromq.js types
  // no send options on a Subscriber; the native option is there.)
  ;(sub as unknown as { setInt32Option(option: number, value: number): void }).setInt32Option(ZMQ_SNDHWM, 0)
  return sub
}

/** A work-group member's socket for its reports, sent upstream to the relay's publisher, never queued behind events. */
export function reportSocket(options: ResolvedOptions, polling: boolean): XSubscriber {
  return new XSubscriber({
    ...baseSocketOptions(options, 'client'),
    sendHighWaterMark: 0,
    ...(polling ? { sendTimeout: 0 } : {}),
    reconnectInterval: RECONNECT_INTERVAL,
    linger: 0
  })
}

/** The relay's publisher, bound on `port`. */
export function publisherSocket(options: ResolvedOptions, context: Context): XPublisher {
  return new XPublisher({
    context,
    ...baseSocketOptions(options, 'relay'),
    // Lossless: a full listener queue makes the relay wait, which backs up to the
    // senders. Drop mode: ZeroMQ drops for that listener only; the listener sees
    // the gap in the sender's sequence numbers and counts it.
    noDrop: options.delivery === 'lossless',
    sendHighWaterMark: options.highWaterMark,
    // Subscriptions are never dropped on the way in, however many arrive at once.
    receiveHighWaterMark: 0,
    // Subscriptions are read without waiting (see Relay's drain): never a receive pending.
    receiveTimeout: 0,
    linger: options.linger,
    // Inbound frames on the publisher are subscriptions (topics, at most a group topic)
    // and group reports (a group topic JSON-escaped once more, and a few fields).
    maxMessageSize: MAX_UPSTREAM_BYTES
  })
}

/** The relay's pull socket, bound on `port + 1`. */
export function pullSocket(options: ResolvedOptions, context: Context): Pull {
  return new Pull({
    context,
    ...baseSocketOptions(options, 'relay'),
    receiveHighWaterMark: options.highWaterMark,
    maxMessageSize: frameLimit(options),
    linger: 0
  })
}

/**
 * Sends `frames` on `socket`. A polling socket (send timeout 0) that is full
 * fails with EAGAIN: then it waits a little and tries again, until it sends or
 * `closed()` says to give up (then it throws the last error).
 */
export function sendFrames(socket: Push | XSubscriber, frames: Frames | string, polling: boolean, closed: () => boolean): Promise<void> {
  return polling ? sendPolling(socket, frames, closed) : socket.send(frames)
}

async function sendPolling(socket: Push | XSubscriber, frames: Frames | string, closed: () => boolean): Promise<void> {
  for (let wait = 0; ; wait = Math.min(wait + 1, MAX_POLL_INTERVAL)) {
    try {
      return await socket.send(frames)
    } catch (error) {
      if (!isEAGAIN(error) || closed()) throw error
      await pause(wait)
    }
  }
}

/** Whether the host is an IPv6 address, which ZeroMQ sockets must be told about. */
export function isIPv6(options: ResolvedOptions): boolean {
  return options.host.includes(':')
}

/**
 * The per-frame limit the receiving sockets enforce (ZeroMQ checks every frame):
 * `maxMessageSize`, with room for the topic and header frames.
 */
export function frameLimit(options: ResolvedOptions): number {
  return options.maxMessageSize + MAX_ENVELOPE_BYTES
}

/** The ZeroMQ endpoint of the relay's publisher (`pub`) or pull (`pull`) socket. */
export function endpoint(options: ResolvedOptions, which: 'pub' | 'pull'): string {
  const host = isIPv6(options) ? `[${options.host}]` : options.host
  return `tcp://${host}:${which === 'pub' ? options.port : options.port + 1}`
}
