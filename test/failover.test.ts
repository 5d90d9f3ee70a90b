// Relay failover: the relay's process is killed, a survivor takes over, nothing sent in the gap is lost.
import t from 'tap'
import { Node } from '../dist/index.js'
import { fixture, portBlock, spawnNode } from './helpers'

const ports = portBlock(__filename)

t.test('SIGKILL of the relay: a survivor takes over, queued events and pending waits survive', async (t) => {
  const port = ports.next()
  const relay = spawnNode(t, fixture('listener.js'), [String(port), 'unused', '1'])
  t.equal(await relay.line(/^READY/), 'READY true')
  const survivor = spawnNode(t, fixture('failover-listener.js'), [String(port)])
  t.equal(await survivor.line(/^READY/), 'READY false', 'the survivor starts as a client')
  const sender = new Node({ port, server: false })
  t.teardown(() => sender.stop())
  await sender.send('tick', { i: 0 })
  await survivor.line('TICK 0')

  relay.process.kill('SIGKILL')
  await relay.exit()
  // Sent while there is no relay at all: queued by the sender, delivered after the takeover.
  for (let i = 1; i <= 200; i++) await sender.send('tick', { i })
  t.equal(await survivor.line(/^RELAY/), 'RELAY true', 'the survivor took the relay over')
  await survivor.line('TICK 200')
  const ticks = survivor.lines.filter((line) => line.startsWith('TICK')).map((line) => Number(line.slice(5)))
  t.same(ticks, Array.from({ length: 201 }, (_, i) => i), 'every event arrived once, in order')

  await sender.send('final', { ok: true })
  t.equal(await survivor.line(/^FINAL/), 'FINAL {"ok":true}', 'the wait started before the failover resolved')
  t.equal(await survivor.exit(), 0)
  t.equal((await sender.stats()).sent, 202)
})

t.test('with no node that may serve, clients keep their queues until a relay appears', async (t) => {
  const port = ports.next()
  const listener = new Node({ port, server: false, readyTimeout: 20_000 })
  const sender = new Node({ port, server: false, readyTimeout: 20_000 })
  t.teardown(async () => {
    await sender.stop()
    await listener.stop()
  })
  const got = listener.waitFor('late', { timeout: 20_000 })
  const listenerReady = listener.ready()
  const sent = sender.send('late', { n: 1 })
  // Now a relay appears (a node that only serves).
  const relay = new Node({ port })
  t.teardown(() => relay.stop())
  t.ok(await relay.startServer())
  await Promise.all([listenerReady, sent])
  t.same((await got).payload, { n: 1 })
})

t.test('the relay host stopping hands the relay to a survivor', async (t) => {
  const port = ports.next()
  const first = new Node({ port })
  const second = new Node({ port, relayTimeout: 200, heartbeatInterval: 50 })
  t.teardown(async () => {
    await second.stop()
    await first.stop()
  })
  t.ok(await first.startServer())
  const roles: boolean[] = []
  const tookOver = new Promise<void>((resolve) =>
    second.on('relay', (hosting) => {
      roles.push(hosting)
      if (hosting) resolve()
    })
  )
  const got = second.waitFor('after', { timeout: 20_000 })
  await second.ready()
  t.notOk(second.isServer())
  await first.stop()
  await tookOver
  t.ok(second.isServer(), 'isServer() tells the truth after the takeover')
  await first.send('after', 'yes')
  t.equal((await got).payload, 'yes')
  t.same(roles, [true])
})
