/**
 * What the client and relay sockets share: ZeroMQ error tests and the socket
 * options derived from a node's options (addressing, CURVE keys).
 *
 * @module
 */
import { isIPv6, ResolvedOptions } from './options'

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
