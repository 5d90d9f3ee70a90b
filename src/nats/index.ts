/**
 * The NATS engine: nodes talk through a NATS server or cluster (`nats://`
 * URLs), with durable work groups on JetStream. There is no relay to host.
 *
 * @module
 */
import type { Engine } from '../engine'
import { NatsClient } from './connection'
import { diagnose } from './diagnose'
import { serverList } from './dial'
import { loadTransport, redact } from './load'

/** The NATS engine. */
export const engine: Engine = {
  name: 'nats',
  durable: true,
  connect(options, node, state, handlers) {
    return new NatsClient(options, node, state, handlers)
  },
  relay() {
    return undefined
  },
  describe(options) {
    return `NATS server answered at ${serverList(redact(options.url as string)).join(', ')}`
  },
  diagnose(options) {
    // Fails first with MissingDependencyError when the client package is missing.
    loadTransport(options.url as string)
    return diagnose(options)
  }
}
