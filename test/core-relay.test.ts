// The core suite (test/engine-suite.ts) on the ZeroMQ relay.
import t from 'tap'
import { coreSuite } from './engine-suite'
import { portBlock } from './helpers'

const port = portBlock(__filename).next()

coreSuite(t, { name: 'relay', options: () => ({ port }), env: () => ({ PYVENT_PORT: String(port) }) })
