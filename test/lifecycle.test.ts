// Options, configure, start/stop, waitFor and the ports a stopped node frees.
import t from 'tap'
import * as pyvent from '../dist/index.js'
import { AbortError, AlreadyStartedError, DEFAULTS, Node, StoppedError, TimeoutError } from '../dist/index.js'
import { resolveOptions } from '../dist/options.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

t.test('options: defaults, environment, validation', async (t) => {
  t.same(resolveOptions({}, {}), DEFAULTS)
  t.equal(DEFAULTS.port, 50020)
  t.equal(DEFAULTS.host, '127.0.0.1', 'loopback by default')
  t.match(resolveOptions({}, { PYVENT_PORT: '6000', PYVENT_HOST: '::1' }), { port: 6000, host: '::1' })
  t.match(resolveOptions({ port: 7000 }, { PYVENT_PORT: '6000' }), { port: 7000 }, 'an explicit option wins over the environment')
  t.throws(() => resolveOptions({}, { PYVENT_PORT: 'abc' }), { name: 'TypeError', message: /PYVENT_PORT/ })
  const bad: [object, RegExp][] = [
    [{ port: 0 }, /"port" must be an integer from 1 to 65534/],
    [{ port: 65535 }, /"port"/],
    [{ port: '50020' }, /"port"/],
    [{ host: '' }, /"host"/],
    [{ host: 'a b' }, /"host"/],
    [{ server: 'yes' }, /"server"/],
    [{ id: 'a b' }, /"id"/],
    [{ id: '' }, /"id"/],
    [{ linger: -1 }, /"linger"/],
    [{ delivery: 'maybe' }, /"delivery"/],
    [{ heartbeatInterval: 100, relayTimeout: 100 }, /"relayTimeout" \(100\) must be longer/],
    [{ prot: 1 }, /Unknown option "prot"/]
  ]
  for (const [options, message] of bad) t.throws(() => new Node(options), { name: 'TypeError', message }, JSON.stringify(options))
  t.throws(() => new Node(null as unknown as object), { name: 'TypeError', message: /must be an object/ })
  t.equal(new Node({ id: 'billing' }).defaultSender, 'pyvent.billing')
  t.equal(new Node().defaultSender, 'pyvent')
  t.equal(new Node({ host: '::1', port: 9 }).options.host, '::1')
})

t.test('stop() frees both ports at once, is idempotent, and a node can start again', async (t) => {
  const port = ports.next()
  const first = new Node({ port })
  const relayEvents: boolean[] = []
  first.on('relay', (hosting) => relayEvents.push(hosting))
  t.notOk(first.isStarted())
  t.ok(await first.startServer(), 'the first node hosts the relay')
  t.ok(first.isServer())
  const second = new Node({ port })
  t.notOk(await second.startServer(), 'the port is taken, so the second node is a client')
  await second.stop()
  await Promise.all([first.stop(), first.stop()])
  await first.stop()
  t.notOk(first.isServer())
  t.notOk(first.isStarted())
  t.same(relayEvents, [true, false], 'the relay event says when hosting starts and ends')
  const third = new Node({ port })
  t.teardown(() => third.stop())
  t.ok(await third.startServer(), 'a new node binds the same ports right after stop()')
  const got = third.waitFor('again')
  await third.ready()
  await third.send('again', 1)
  t.equal((await got).payload, 1)
  await third.stop()
  t.ok(await first.startServer(), 'a stopped node can start again')
  await first.stop()
})

t.test('waitFor: resolves, times out, aborts, and stops with the node', async (t) => {
  const port = ports.next()
  const node = new Node({ port })
  t.teardown(() => node.stop())
  const hit = node.waitFor('w', { timeout: 5000 })
  await node.ready()
  await node.send('w', { ok: true })
  const event = await hit
  t.same(event.payload, { ok: true })
  t.equal(event.signal, 'w')

  const timedOut = await node.waitFor('never', { timeout: 20 }).catch((e: unknown) => e)
  t.ok(timedOut instanceof TimeoutError)
  t.match(timedOut, { code: 'ERR_PYVENT_TIMEOUT', timeout: 20, message: /No event on "never" within 20 ms/ })

  const controller = new AbortController()
  const aborted = node.waitFor('never', { abortSignal: controller.signal })
  controller.abort()
  await t.rejects(aborted, AbortError)
  await t.rejects(node.waitFor('x', { abortSignal: AbortSignal.abort() }), { code: 'ERR_PYVENT_ABORTED' }, 'an aborted signal rejects at once')
  await t.rejects(node.waitFor('x', { timeout: -1 }), { name: 'TypeError' })
  // A string that looks like a number is shown as the string it is.
  await t.rejects(node.waitFor('x', { timeout: '100' as unknown as number }), { code: 'ERR_PYVENT_INVALID_ARGUMENT', message: /got "100"\./ })

  // The send option subscribes first, then sends, so the answer cannot be missed.
  node.connect('ping', (n: number) => void node.send('pong', n + 1))
  const pong = await node.waitFor('pong', { timeout: 5000, send: { signal: 'ping', payload: 41 } })
  t.equal(pong.payload, 42)

  const pending = t.rejects(node.waitFor('never'), StoppedError, 'a pending wait rejects when the node stops')
  await node.stop()
  await pending
})

t.test('a request that times out before any relay answered says it was never sent, not that no responder answered', async (t) => {
  const port = ports.next()
  // No relay on this port, and this node may not host one: readiness waits readyTimeout (5 s), longer than the request.
  const node = new Node({ port, server: false })
  t.teardown(() => node.stop())
  const error = await node.request('add', { a: 1, b: 2 }, { timeout: 200 }).catch((e: unknown) => e)
  t.ok(error instanceof TimeoutError, 'still a TimeoutError')
  t.match(error, { code: 'ERR_PYVENT_TIMEOUT', timeout: 200, message: /^The request "add" was not sent within 200 ms: no relay or engine server had answered this node yet/ })
  t.notMatch((error as Error).message, /No responder/)
})

t.test('a wait or request that timed out before the node could start: why it could not start is reported once, afterwards', async (t) => {
  const port = ports.next()
  const node = new Node({ port, server: false, readyTimeout: 600 })
  t.teardown(() => node.stop())
  const errors: Error[] = []
  const reported = new Promise<Error>((resolve) => node.on('error', (error) => resolve(error)))
  node.on('error', (error) => errors.push(error))
  const [wait, request] = await Promise.all([
    node.waitFor('x', { timeout: 100 }).catch((e: unknown) => e),
    node.request('y', {}, { timeout: 100 }).catch((e: unknown) => e)
  ])
  t.match(wait, { code: 'ERR_PYVENT_TIMEOUT', message: /^No event on "x" within 100 ms, and the relay \(or engine server\) had not confirmed the wait yet: is one running at the address\?$/ })
  t.match(request, { code: 'ERR_PYVENT_TIMEOUT', message: /^The request "y" was not sent within 100 ms/ })
  t.match(await reported, { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: new RegExp(`^No pyvent relay answered at 127\\.0\\.0\\.1:${port} within 600 ms`) }, 'the reason, on the error event')
  // Both callers share that one failure: one report, and the next call (a new start) gets its own answer.
  await t.rejects(node.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE' })
  t.equal(errors.length, 1, 'reported once for both')
})

t.test('configure() proxies the default node and refuses once it has started', async (t) => {
  const port = ports.next()
  pyvent.configure({ port })
  t.teardown(() => pyvent.stop())
  t.notOk(pyvent.isServer())
  const got = pyvent.waitFor('cfg')
  await pyvent.ready()
  t.ok(pyvent.isServer(), 'the default node hosts the relay')
  t.equal(pyvent.defaultNode().options.port, port)
  t.throws(() => pyvent.configure({ port: port + 10 }), AlreadyStartedError)
  await pyvent.send('cfg', 'value')
  t.equal((await got).payload, 'value')
  t.equal((await pyvent.stats()).received, 1)
  await pyvent.stop()
  pyvent.configure({ port, id: 'again' })
  t.equal(pyvent.defaultNode().defaultSender, 'pyvent.again', 'after stop() the default node can be reconfigured')
  t.ok(await pyvent.startServer())
})

t.test('sequence numbers (and so event ids) continue across a restart', async (t) => {
  const port = ports.next()
  const node = new Node({ port })
  t.teardown(() => node.stop())
  const first = node.waitFor('seq')
  await node.ready()
  await node.send('seq', 1)
  const a = await first
  await node.stop()
  const second = node.waitFor('seq')
  await node.ready()
  await node.send('seq', 2)
  const b = await second
  t.same([a.seq, b.seq], [0, 1])
  t.not(a.id, b.id)
  t.equal((await node.stats()).duplicates, 0)
})

t.test('batches stay under a small maxMessageSize', async (t) => {
  const port = ports.next()
  const node = new Node({ port, maxMessageSize: 1024 })
  t.teardown(() => node.stop())
  let count = 0
  let done: () => void
  const all = new Promise<void>((resolve) => (done = resolve))
  node.connect('small', () => {
    if (++count === 300) done()
  })
  await node.ready()
  // 300 events of ~40 bytes in one tick would make one 12 kB batch without the cap.
  await Promise.all(Array.from({ length: 300 }, (_, i) => node.send('small', { i, food: 'sushi', drink: 'sake' })))
  await all
  const stats = await node.stats()
  t.equal(stats.received, 300)
  t.equal(stats.gaps, 0)
  await t.rejects(node.send('small', 'x'.repeat(1023)), { code: 'ERR_PYVENT_MESSAGE_TOO_LARGE', limit: 1024 })
  await node.send('small', 'x'.repeat(1020)).then(() => t.pass('a payload whose body is exactly the limit is accepted'))
})
