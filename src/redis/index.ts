/**
 * The Redis engine: every node connects to one Redis server (option `url` or
 * PYVENT_URL, `redis://` or `rediss://`), which carries events, requests and
 * work groups between hosts, and stores the events of durable groups. The
 * client is node-redis (the `redis` package, an optional peer dependency),
 * loaded only when a Redis URL is used.
 *
 * @module
 */
import type { Engine } from '../engine'
import { RedisConnection } from './connection'
import { diagnose } from './diagnose'
import { maskUrl } from './load'

/** The engine of every node with a `redis://` or `rediss://` URL. */
export const engine: Engine = {
  name: 'redis',
  durable: true,
  connect: (options, node, state, handlers) => new RedisConnection(options, node, state, handlers),
  relay: () => undefined,
  describe: ({ url }) => `Redis server answered at ${maskUrl(url ?? '')}`,
  diagnose
}
