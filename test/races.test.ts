// Calls that race stop(): the node ends up consistent, nothing leaks, nothing throws a TypeError.
import t from 'tap'
import * as pyvent from '../dist/index.js'
import { AbortError, Node, StoppedError } from '../dist/index.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

t.test('ready(), send() and request() right after stop() start the node again', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  node.respond('echo', (text: string) => text)
  await node.ready()
  const stopped = node.stop()
  await node.ready()
  await stopped
  t.ok(node.isStarted(), 'the node started again after the stop')
  void node.stop()
  // Registered after stop() was called: part of the next start, like the request.
  node.respond('echo', (text: string) => text)
  t.equal(await node.request('echo', 'again', { timeout: 5000 }), 'again')
})

t.test('a listener connected while stop() flushes belongs to the next start', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  const before = node.waitFor('late')
  await node.ready()
  await node.send('queued', 1) // something to flush, so the stop takes a round trip
  const stopping = node.stop()
  const after = node.waitFor('late')
  await t.rejects(before, StoppedError, 'a wait made before stop() ends with it')
  await stopping
  await node.ready()
  await node.send('late', 'yes')
  t.equal((await after).payload, 'yes', 'a wait made during the flush survives it')
})

t.test('startServer() racing stop() never leaves a relay on a stopped node', async (t) => {
  const port = ports.next()
  const node = new Node({ port })
  const hosting = node.startServer()
  await node.stop()
  await hosting.catch(() => false)
  await node.stop()
  t.notOk(node.isServer())
  const next = new Node({ port })
  t.teardown(() => next.stop())
  t.ok(await next.startServer(), 'the ports are free')
})

t.test('request() honours an abort that comes while it waits for the relay', async (t) => {
  const node = new Node({ port: ports.next(), server: false, readyTimeout: 5000 })
  t.teardown(() => node.stop())
  const controller = new AbortController()
  const pending = node.request('nobody', {}, { abortSignal: controller.signal, timeout: 60_000 })
  controller.abort()
  const start = Date.now()
  await t.rejects(pending, AbortError)
  t.ok(Date.now() - start < 1000, 'at once, not after the timeout')
})

t.test('module-level decorators use the default node of the moment they run', async (t) => {
  const port = ports.next()
  class Orders {
    @pyvent.emits('placed')
    place(food: string) {
      return food
    }
  }
  pyvent.configure({ port })
  t.teardown(() => pyvent.stop())
  const watcher = new Node({ port, server: false })
  t.teardown(() => watcher.stop())
  await pyvent.startServer()
  const got = watcher.waitFor('placed', { sender: 'pyvent.Orders' })
  await watcher.ready()
  new Orders().place('udon')
  t.same((await got).payload, 'udon')
})
