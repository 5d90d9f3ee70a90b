/**
 * The ZeroMQ relay engine: a relay process (XPUB on port, PULL on port + 1)
 * that the first node able to serve starts, and client sockets in every node.
 *
 * @module
 */
import type { Engine } from '../engine'
import { Client } from './client'
import { diagnose } from './diagnose'
import type { RelayStats } from './relay-types'
import { RelayHost } from './relay-host'

/** The engine of every node without a URL. */
export const engine: Engine<RelayStats> = {
  name: 'relay',
  durable: false,
  connect: (options, node, state, handlers) => new Client(options, node, state, handlers),
  relay: () => new RelayHost(),
  describe: ({ host, port }) => `pyvent relay answered at ${host}:${port}`,
  diagnose
}
