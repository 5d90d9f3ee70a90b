/**
 * Picks a node's engine. Loaded on first use, so the facade never loads a
 * transport it does not need (only ZeroMQ exists today).
 *
 * @module
 */
import type { Engine } from './engine'
import type { ResolvedOptions } from './options'
import type { RelayStats } from './zmq/relay'

/** The engine for these options. */
export function engineFor(_options: ResolvedOptions): Engine<RelayStats> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./zmq') as typeof import('./zmq')).zmqEngine
}
