/**
 * Loads the NATS client packages on first use: they are optional peer
 * dependencies, so a program that never names a `nats://` URL never needs them.
 *
 * @module
 */
import type * as Transport from '@nats-io/transport-node'
import type * as JetStream from '@nats-io/jetstream'
import { MissingDependencyError } from '../errors'

/** The client package of the NATS engine. */
export const TRANSPORT_PACKAGE = '@nats-io/transport-node'
/** The JetStream package, needed for durable groups only. */
export const JETSTREAM_PACKAGE = '@nats-io/jetstream'

export type TransportModule = typeof Transport
export type JetStreamModule = typeof JetStream

let transport: TransportModule | undefined
let jetstream: JetStreamModule | undefined

/** Hides credentials in a URL before it goes into a message. */
export function redact(url: string): string {
  return url.replace(/\/\/[^@/,]*@/g, '//***@')
}

function load<T>(name: string, url: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') throw new MissingDependencyError(name, redact(url), { cause: error })
    throw error
  }
}

/** `@nats-io/transport-node`, or a {@link MissingDependencyError} naming it. */
export function loadTransport(url: string): TransportModule {
  transport ??= load<TransportModule>(TRANSPORT_PACKAGE, url)
  return transport
}

/** `@nats-io/jetstream`, or a {@link MissingDependencyError} naming it. */
export function loadJetStream(url: string): JetStreamModule {
  jetstream ??= load<JetStreamModule>(JETSTREAM_PACKAGE, url)
  return jetstream
}
