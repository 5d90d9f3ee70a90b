// Routing through a real relay: signal exactness, sender prefixes, Any, listener failures, payload checks.
import t, { Test } from 'tap'
import { Any, InvalidPayloadError, ListenerError, MessageTooLargeError, Node, PyventEvent, senderMatches } from '../dist/index.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

/** A relay-hosting node and a client node on a fresh port, both stopped in teardown. */
async function pair(t: Test): Promise<{ host: Node; peer: Node }> {
  const port = ports.next()
  const host = new Node({ port })
  const peer = new Node({ port, server: false, id: 'peer' })
  // The client first: stopping the relay first would leave its final flush nowhere to go.
  t.teardown(async () => {
    await peer.stop()
    await host.stop()
  })
  await host.ready()
  return { host, peer }
}

/** Collects events of a signal until `done(list)` holds. */
function collect(node: Node, signal: string | typeof Any, sender: string | typeof Any | undefined, done: (list: PyventEvent[]) => boolean) {
  const list: PyventEvent[] = []
  let finish: () => void
  const finished = new Promise<PyventEvent[]>((resolve) => (finish = () => resolve(list)))
  node.connect(signal, (_payload, event) => {
    list.push(event)
    if (done(list)) finish()
  }, sender === undefined ? undefined : { sender })
  return finished
}

t.test('senderMatches: exact, below at a dot, Any', async (t) => {
  t.ok(senderMatches('customer-manager', 'customer-manager'))
  t.ok(senderMatches('customer-manager', 'customer-manager.orders.eu'))
  t.notOk(senderMatches('customer-manager', 'customer-managerX'))
  t.notOk(senderMatches('customer-manager', 'customer'))
  t.notOk(senderMatches('customer-manager', 'x.customer-manager'))
  t.ok(senderMatches(Any, 'anyone'))
})

t.test('sender prefix filtering through the relay', async (t) => {
  const { host, peer } = await pair(t)
  const filtered = collect(peer, 'order', 'customer-manager', (l) => l.some((e) => e.payload === 'end'))
  const any = collect(peer, 'order', Any, (l) => l.some((e) => e.payload === 'end'))
  const byDefault = collect(peer, 'order', undefined, (l) => l.some((e) => e.payload === 'end'))
  await peer.ready()
  for (const sender of ['customer-manager', 'customer-manager.eu', 'customer-managerX', 'pyvent', 'pyvent.other']) {
    await host.send('order', sender, { sender })
  }
  await host.send('order', 'end', { sender: 'customer-manager' })
  await host.send('order', 'end')
  t.same((await filtered).map((e) => e.sender), ['customer-manager', 'customer-manager.eu', 'customer-manager'])
  t.same((await byDefault).map((e) => e.sender), ['pyvent', 'pyvent.other', 'pyvent'], 'the default filter is "pyvent"')
  t.equal((await any).length, 7, 'Any accepts every sender')
})

t.test('a subscription for "order" does not deliver "order-food"', async (t) => {
  const { host, peer } = await pair(t)
  const orders = collect(peer, 'order', undefined, (l) => l.length === 2)
  await peer.ready()
  await host.send('order', { n: 1 })
  await host.send('order-food', { n: 2 })
  await host.send('orde', { n: 3 })
  await host.send('order', { n: 4 })
  t.same((await orders).map((e) => e.payload), [{ n: 1 }, { n: 4 }])
  const stats = await peer.stats()
  t.equal(stats.received, 2, 'the other signals never reached this process at all')
})

t.test('Any as a signal hears every signal; events carry metadata', async (t) => {
  const { host, peer } = await pair(t)
  const all = collect(peer, Any, Any, (l) => l.length === 3)
  await peer.ready()
  const before = Date.now()
  await host.send('a', 1)
  await host.send('b', [2])
  await host.send('a', { three: 3 })
  const events = await all
  t.same(events.map((e) => [e.signal, e.payload, e.seq]), [['a', 1, 0], ['b', [2], 0], ['a', { three: 3 }, 1]])
  const [first] = events as [PyventEvent]
  t.equal(first.node, host.nodeId)
  t.match(first.id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'the id is a UUID')
  t.not(first.id, events[1]!.id, 'ids differ between events')
  t.ok(first.timestamp >= before - 1 && first.timestamp <= Date.now(), 'the timestamp is when it was sent')
  t.same(JSON.parse(JSON.stringify(first)), { signal: 'a', sender: 'pyvent', id: first.id, node: host.nodeId, seq: 0, timestamp: first.timestamp, payload: 1 })
})

t.test('a failing listener never stops the others; failures are reported', async (t) => {
  const { host, peer } = await pair(t)
  const errors: Error[] = []
  const twoErrors = new Promise<void>((resolve) =>
    peer.on('error', (error) => {
      errors.push(error)
      if (errors.length === 2) resolve()
    })
  )
  peer.connect('job', () => {
    throw new Error('sync failure')
  })
  peer.connect('job', async () => {
    throw new Error('async failure')
  })
  const good = collect(peer, 'job', undefined, (l) => l.length === 2)
  await peer.ready()
  await host.send('job', 1)
  await host.send('job', 2)
  t.same((await good).map((e) => e.payload), [1, 2], 'the healthy listener got both events')
  await twoErrors
  t.ok(errors.every((e) => e instanceof ListenerError && e.code === 'ERR_PYVENT_LISTENER' && e.signal === 'job'))
  t.match(errors.map((e) => e.message).sort(), [/async failure/, /sync failure/])
})

t.test('without an error listener, a failure becomes a process warning', async (t) => {
  const { host, peer } = await pair(t)
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve))
  peer.connect('boom', () => {
    throw new Error('nobody listens')
  })
  await peer.ready()
  await host.send('boom')
  const warning = await warned
  t.equal(warning.name, 'ListenerError')
  t.match(warning.message, /nobody listens/)
})

t.test('payloads JSON cannot carry reject before anything is sent', async (t) => {
  const { host } = await pair(t)
  const sentBefore = (await host.stats()).sent
  await t.rejects(host.send('x', { f: () => 1 }), InvalidPayloadError)
  await t.rejects(host.send('x', { n: 1n }), { code: 'ERR_PYVENT_INVALID_PAYLOAD', message: /BigInt/ })
  const cycle: Record<string, unknown> = {}
  cycle.me = cycle
  const error = await host.send('x', cycle).catch((e: unknown) => e)
  t.ok(error instanceof TypeError, 'a cycle is a TypeError')
  t.match(error, { code: 'ERR_PYVENT_INVALID_PAYLOAD', message: /circular/ })
  await t.rejects(host.send('x', 'x'.repeat(2 * 1024 * 1024)), MessageTooLargeError)
  t.equal((await host.stats()).sent, sentBefore, 'nothing was sent')
})

t.test('bad signal names and options are TypeErrors', async (t) => {
  const { host } = await pair(t)
  await t.rejects(host.send('', {}), { name: 'TypeError', message: /must not be empty/ })
  await t.rejects(host.send(7 as unknown as string, {}), { name: 'TypeError', message: /must be a string/ })
  await t.rejects(host.send('$h', {}), { name: 'TypeError', message: /reserved/ })
  await t.rejects(host.send(Any as unknown as string, {}), { name: 'TypeError', message: /Cannot send to Any/ })
  await t.rejects(host.send('x', {}, { sender: '' }), { name: 'TypeError', message: /sender/ })
  t.throws(() => host.connect('$p.x', () => undefined), { name: 'TypeError', message: /reserved/ })
  t.throws(() => host.connect('x', () => undefined, { sender: '' }), { name: 'TypeError', message: /sender filter/ })
  t.throws(() => host.connect({} as unknown as string, () => undefined), { name: 'TypeError' })
})

t.test('disconnect removes listeners and their subscription', async (t) => {
  const { host, peer } = await pair(t)
  const a = () => undefined
  const b = () => undefined
  peer.connect('d', a)
  peer.connect('d', b)
  t.equal(peer.disconnect('d', a), 1)
  t.equal(peer.disconnect('d', a), 0, 'removing twice removes nothing')
  t.equal(peer.disconnect('d'), 1, 'without a callback, every listener of the signal goes')
  t.equal(peer.disconnect('never'), 0)
  // The subscription is gone: an event on "d" no longer reaches this process.
  const marker = peer.waitFor('marker')
  await peer.ready()
  await host.send('d', 1)
  await host.send('marker', 2)
  await marker
  t.equal((await peer.stats()).received, 1, 'only the marker arrived')
})

t.test('disconnect(signal) spares pending waits; a listener that disconnects itself stops mid-batch', async (t) => {
  const { host, peer } = await pair(t)
  const wait = peer.waitFor('d2', { timeout: 20_000 })
  peer.connect('d2', () => undefined)
  t.equal(peer.disconnect('d2'), 1, 'only the listener went')
  let calls = 0
  const once = peer.connect('batch', () => {
    calls++
    peer.disconnect('batch', once)
  })
  await peer.ready()
  // Ten events in one tick travel as one message.
  await Promise.all(Array.from({ length: 10 }, (_, i) => host.send('batch', i)))
  await host.send('d2', 'still waiting')
  t.equal((await wait).payload, 'still waiting')
  t.equal(calls, 1, 'called once, not for the rest of its batch')
})
