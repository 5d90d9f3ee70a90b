// Choosing an engine by URL, and what the relay engine refuses because it stores nothing.
// Needs no server: the URL engines' own tests start theirs.
import t from 'tap'
import { Node, UnsupportedError } from '../dist/index.js'
import { addressOf, resolveOptions } from '../dist/options.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

t.test('url and PYVENT_URL: known schemes pass, anything else is a TypeError naming them', async (t) => {
  t.equal(resolveOptions({}, {}).url, undefined, 'no URL: the relay')
  t.equal(resolveOptions({ url: 'redis://127.0.0.1:6379' }, {}).url, 'redis://127.0.0.1:6379')
  t.equal(resolveOptions({}, { PYVENT_URL: 'nats://a:4222,b:4222' }).url, 'nats://a:4222,b:4222', 'from the environment')
  t.equal(resolveOptions({ url: 'rediss://h:1' }, { PYVENT_URL: 'nats://x:1' }).url, 'rediss://h:1', 'the option wins over the environment')
  t.throws(() => resolveOptions({ url: 'http://x:1' }, {}), { name: 'TypeError', message: /redis:\/\/, rediss:\/\/, nats:\/\/ or tls:\/\// })
  t.throws(() => resolveOptions({}, { PYVENT_URL: 'mqtt://x' }), { name: 'TypeError', message: /PYVENT_URL/ })
  // A password in a refused URL is not echoed back.
  t.throws(() => resolveOptions({ url: 'ftp://user:secret@host' }, {}), { message: /\/\/\*\*\*@host/ })
  let message = ''
  try {
    resolveOptions({ url: 'ftp://user:secret@host' }, {})
  } catch (error) {
    message = (error as Error).message
  }
  t.notMatch(message, /secret/, 'the password is masked')
  t.throws(() => resolveOptions({ nats: { password: 'x' } } as never, {}), { name: 'TypeError', message: /Unknown field "nats.password"/ })
  t.throws(() => resolveOptions({ maxStreamLength: 0 }, {}), { message: /"maxStreamLength"/ })
})

t.test('durable groups and dead letters are refused on the relay with UnsupportedError', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  t.throws(() => node.connect('jobs', () => undefined, { group: 'workers', durable: true }), {
    name: 'UnsupportedError',
    code: 'ERR_PYVENT_UNSUPPORTED',
    engine: 'relay',
    message: /needs storage.*Redis or NATS URL/
  })
  t.throws(() => node.connect('jobs', () => undefined, { durable: true }), { name: 'TypeError', message: /durable option applies to work-group listeners only/ })
  t.throws(() => node.connect('jobs', () => undefined, { group: 'w', durable: { tries: 3 } as never }), { name: 'UnsupportedError' }, 'the engine is checked before the fields')
  await t.rejects(node.deadLetters('jobs', 'workers'), UnsupportedError)
  t.notOk(node.isStarted(), 'nothing refused started the node')
  // A plain group still works on the relay: durable false is the same as leaving it out.
  node.connect('jobs', () => undefined, { group: 'workers', durable: false })
  t.equal(node.disconnect('jobs', undefined, { group: 'workers' }), 1)
})

t.test('an option the engine ignores is warned about once per process', async (t) => {
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => {
    if ((warning as { code?: string }).code === 'PYVENT_IGNORED_OPTION') warnings.push(warning)
  }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const nodes = [new Node({ port: ports.next(), maxStreamLength: 10 }), new Node({ port: ports.next(), maxStreamLength: 10 })]
  t.teardown(() => Promise.all(nodes.map((node) => node.stop())))
  // process.emitWarning delivers on the next tick.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(warnings.length, 1, 'one warning for two nodes with the same ignored option')
  t.match(warnings[0]?.message, /"maxStreamLength" has no effect on the relay engine/)
})

t.test('an unreachable server is named by its URL, and the error carries its host and port', async (t) => {
  t.same(addressOf(resolveOptions({ url: 'redis://:pw@cache.internal/2' }, {})), { host: 'cache.internal', port: 6379 })
  t.same(addressOf(resolveOptions({ url: 'nats://a.example:4333,nats://b.example:4444' }, {})), { host: 'a.example', port: 4333 })
  t.same(addressOf(resolveOptions({ url: 'tls://n.example' }, {})), { host: 'n.example', port: 4222 })
  t.same(addressOf(resolveOptions({ port: 50100 }, {})), { host: '127.0.0.1', port: 50100 })
  // Nothing listens on this port: a portBlock port this file never binds.
  const port = ports.next()
  const node = new Node({ url: `redis://user:secret@127.0.0.1:${port}`, readyTimeout: 300 })
  t.teardown(() => node.stop())
  await t.rejects(node.ready(), {
    name: 'RelayUnreachableError',
    host: '127.0.0.1',
    port,
    message: new RegExp(`^No Redis server answered at redis://user:\\*\\*\\*@127\\.0\\.0\\.1:${port} within 300 ms\\.`)
  })
})
