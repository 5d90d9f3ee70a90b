// The core suite (test/engine-suite.ts) on a three-server NATS cluster: every
// node is given all three servers and lands on any of them.
import t from 'tap'
import { coreSuite } from './engine-suite'
import { portBlock } from './helpers'
import { clusterUrl, natsRequirement, NatsServer, startCluster } from './nats-cluster'
import { requireSystem } from './requires'

const ports = portBlock(__filename)

if (requireSystem(t, natsRequirement('the core suite on NATS'))) {
  let servers: NatsServer[] = []
  t.before(async () => {
    servers = await startCluster(t, ports)
  })
  coreSuite(t, { name: 'nats', options: () => ({ url: clusterUrl(servers) }), env: () => ({ PYVENT_URL: clusterUrl(servers) }) })
}
