// The core suite (test/engine-suite.ts) on Redis, against a redis-server of this file's own.
import t from 'tap'
import { coreSuite } from './engine-suite'
import { portBlock } from './helpers'
import { requireRedis, startRedis } from './redis-server'

const port = portBlock(__filename).next()
const url = `redis://127.0.0.1:${port}`

if (requireRedis(t, 'the Redis core suite')) {
  t.before(async () => {
    await startRedis(t, port)
  })
  coreSuite(t, { name: 'redis', options: () => ({ url }), env: () => ({ PYVENT_URL: url }) })
}
