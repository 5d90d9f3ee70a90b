/**
 * What the client and relay sockets share: ZeroMQ error tests, the socket
 * options derived from a node's options (addressing, CURVE keys), and the
 * relay's sockets, built from those options in one place.
 *
 * @module
 */
import { Context, Pull, XPublisher } from 'zeromq'
import { MAX_ENVELOPE_BYTES, MAX_UPSTREAM_BYTES } from '../codec'
import type { ResolvedOptions } from '../options'

/** Whether a ZeroMQ error means "not now" (a full queue, or nothing to receive). */
export function isEAGAIN(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === 'EAGAIN'
}

/** Socket options every pyvent socket on these options takes, for the client or the relay side. */
export function baseSocketOptions(options: ResolvedOptions, side: 'client' | 'relay'): Record<string, unknown> {
  const base: Record<string, unknown> = { ipv6: isIPv6(options) }
  const curve = options.curve
  if (curve === undefined) return base
  if (side === 'relay') return { ...base, curveServer: true, curveSecretKey: curve.serverSecretKey ?? null, zapDomain: 'pyvent' }
  return { ...base, curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey }
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
