/**
 * What the client and relay sockets share: ZeroMQ error tests and the socket
 * options derived from a node's options (addressing, CURVE keys).
 *
 * @module
 */
import { MAX_ENVELOPE_BYTES } from '../codec'
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
