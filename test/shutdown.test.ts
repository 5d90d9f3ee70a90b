// Clean shutdown under load: stop() flushes what was queued (within linger) and
// then closes, leaving no handle, worker or process behind and no rejection unhandled.
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import t, { Test } from 'tap'
import { Node } from '../dist/index.js'
import { Child, canBind, deadline, fixture, portBlock, spawnNode } from './helpers'

const ports = portBlock(__filename)

/** The active handles and requests of this process (`process.getActiveResourcesInfo()`), by type. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1
  return counts
}

/** The types of which `after` has more entries than `before`, with how many more. */
function added(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const more: Record<string, number> = {}
  for (const [type, count] of Object.entries(after)) if (count > (before[type] ?? 0)) more[type] = count - (before[type] ?? 0)
  return more
}

/** Collects the unhandled rejections of the rest of the test. */
function unhandledRejections(t: Test): unknown[] {
  const reasons: unknown[] = []
  const record = (reason: unknown): void => void reasons.push(reason)
  process.on('unhandledRejection', record)
  t.teardown(() => void process.off('unhandledRejection', record))
  return reasons
}

/** The first ALL or ORDER line of a shutdown-listener.js process. */
function outcome(listener: Child): Promise<string> {
  return listener.line(/^(ALL|ORDER) /)
}

t.test('stop() with 20,000 sends in flight delivers every one, then leaves nothing behind', async (t) => {
  const port = ports.next()
  const count = 20_000
  const listener = spawnNode(t, fixture('shutdown-listener.js'), [String(port), 'load', String(count)])
  t.equal(await listener.line(/^READY/), 'READY true', 'the listener process hosts the relay')
  const rejections = unhandledRejections(t)
  const before = resources()
  const node = new Node({ port, server: false })
  t.teardown(() => node.stop())
  await node.ready()
  let resolved = 0
  // Not awaited one by one: most of these are still queued (or waiting for room) when stop() is called.
  const sends: Promise<void>[] = []
  for (let i = 0; i < count; i++) sends.push(node.send('load', { i }).then(() => void resolved++))
  const started = Date.now()
  await deadline(node.stop(), node.options.linger + 2000, 'stop()')
  const elapsed = Date.now() - started
  const left = added(before, resources())
  t.same(left, {}, 'stop() left no handle or request behind')
  t.equal(await outcome(listener), `ALL ${count}`, 'every event queued before stop() arrived, once, in order')
  await deadline(Promise.allSettled(sends), 1000, 'the send() promises to settle')
  t.equal(resolved, count, 'every send() resolved')
  t.same(rejections, [], 'no unhandled rejection')
  t.ok(elapsed < node.options.linger, `the flush took ${elapsed} ms, within linger (${node.options.linger} ms)`)
  t.equal(await listener.exit(), 0, 'the listener exits by itself')
})

t.test('stopping the relay host with sends in flight: an attached listener gets them all, nothing is left behind', async (t) => {
  const port = ports.next()
  const count = 5000
  // The listener first (it waits for a relay), so that its process handles are there before and after.
  const listener = spawnNode(t, fixture('shutdown-listener.js'), [String(port), 'load', String(count), 'false'])
  const rejections = unhandledRejections(t)
  const before = resources()
  const host = new Node({ port })
  t.teardown(() => host.stop())
  t.ok(await host.startServer(), 'the test process hosts the relay')
  t.equal(await listener.line(/^READY/), 'READY false', 'the listener process is a client')
  await host.ready()
  for (let i = 0; i < count; i++) void host.send('load', { i })
  await deadline(host.stop(), host.options.linger + 3000, 'stop()')
  t.same(added(before, resources()), {}, 'stop() left no handle, request or worker behind')
  t.notOk(host.isServer(), 'the node no longer hosts the relay')
  t.ok((await canBind(port)) && (await canBind(port + 1)), 'both relay ports are free')
  t.equal(await outcome(listener), `ALL ${count}`, 'the listener got every event')
  t.equal(await listener.exit(), 0, 'the listener exits by itself')
  t.same(rejections, [], 'no unhandled rejection')
})

t.test('a process hosting the relay exits by itself after stop() with 20,000 sends in flight', async (t) => {
  const port = ports.next()
  const count = 20_000
  const linger = 1500
  const host = spawnNode(t, fixture('shutdown-relay-sender.js'), [String(port), 'load', String(count), String(linger)])
  t.equal(await host.line(/^READY/), 'READY true', 'the sender process hosts the relay')
  const listener = spawnNode(t, fixture('shutdown-listener.js'), [String(port), 'load', String(count), 'false'])
  t.equal(await listener.line(/^READY/), 'READY false', 'the listener process is a client')
  const started = Date.now()
  host.process.stdin!.write('go\n')
  const code = await host.exit()
  t.equal(code, 0, `the relay host exited by itself, without an error (signal: ${String(host.process.signalCode)}; stderr: ${host.stderr.join(' | ')})`)
  t.match(await host.line(/^STOPPED/), /^STOPPED \d+ true$/, 'stop() resolved true: the relay confirmed every event within linger')
  t.equal(await host.line(/^SETTLED/), `SETTLED ${count} 0`, 'every send() resolved')
  t.equal(await outcome(listener), `ALL ${count}`, 'the listener got every event, in order')
  t.equal(await listener.exit(), 0, 'the listener exits by itself')
})

t.test('with a listener that stopped reading, linger bounds stop() and the exit of the relay host', async (t) => {
  const port = ports.next()
  const count = 20_000
  const linger = 1500
  // 20 MB of payload: more than the stuck listener's socket buffers can take, so sends stay queued.
  const host = spawnNode(t, fixture('shutdown-relay-sender.js'), [String(port), 'load', String(count), String(linger), '1000'])
  t.equal(await host.line(/^READY/), 'READY true', 'the sender process hosts the relay')
  const listener = spawnNode(t, fixture('shutdown-listener.js'), [String(port), 'load', String(count), 'false'])
  t.equal(await listener.line(/^READY/), 'READY false', 'the listener process is a client')
  listener.process.kill('SIGSTOP')
  // When stop() resolved, as seen here: the host prints STOPPED at once.
  const stoppedAt = host.line(/^STOPPED/).then(() => Date.now())
  host.process.stdin!.write('go\n')
  const code = await host.exit()
  const exitedAt = Date.now()
  t.equal(code, 0, `the relay host exited by itself, without an error (signal: ${String(host.process.signalCode)}; stderr: ${host.stderr.join(' | ')})`)
  const [, ms, flushed] = (await host.line(/^STOPPED/)).split(' ')
  const stopped = Number(ms)
  t.equal(flushed, 'false', 'stop() resolved false: the flush gave up')
  t.ok(stopped >= linger * 0.9, `stop() waited for the stuck queue (${stopped} ms): the sends were really pending`)
  t.ok(stopped < linger + 1000, `stop() resolved after ${stopped} ms, bounded by linger (${linger} ms)`)
  t.equal(await host.line(/^SETTLED/), `SETTLED ${count} 0`, 'every send() resolved: none rejected')
  // linger is documented as how long queued events may hold a stopping node or an exiting process.
  // Once stop() has given up, the exit must not linger a second time.
  const after = exitedAt - (await stoppedAt)
  t.ok(after < linger, `the process exited ${after} ms after stop() resolved (linger ${linger} ms)`)
  t.same(host.stderr.filter((line) => /WARNING/.test(line)), [], 'no warning at exit')
})

t.test('linger bounds stop() when the relay was killed with events queued', async (t) => {
  const port = ports.next()
  const linger = 300
  const relay = spawnNode(t, fixture('shutdown-listener.js'), [String(port), 'load', '1000000'])
  t.equal(await relay.line(/^READY/), 'READY true', 'the listener process hosts the relay')
  const rejections = unhandledRejections(t)
  const before = resources()
  const node = new Node({ port, server: false, linger })
  t.teardown(() => node.stop())
  await node.ready()
  relay.process.kill('SIGKILL')
  await relay.exit()
  let resolved = 0
  const sends: Promise<void>[] = []
  for (let i = 0; i < 1000; i++) sends.push(node.send('load', { i }).then(() => void resolved++))
  const started = Date.now()
  await deadline(node.stop(), linger + 2000, 'stop()')
  const elapsed = Date.now() - started
  t.ok(elapsed < linger + 500, `stop() gave up after ${elapsed} ms (linger ${linger} ms)`)
  await deadline(Promise.allSettled(sends), 1000, 'the send() promises to settle')
  t.equal(resolved, 1000, 'every send() resolved: the events were dropped, not rejected')
  t.same(rejections, [], 'no unhandled rejection')
  t.same(added(before, resources()), {}, 'no handle or request is left behind')
})

t.test('a worker thread that stops with sends in flight delivers them and ends by itself', async (t) => {
  const port = ports.next()
  const count = 5000
  const host = new Node({ port })
  t.teardown(() => host.stop())
  let next = 0
  const misplaced: number[] = []
  let done: () => void
  const all = new Promise<void>((resolve) => (done = resolve))
  host.connect('load', ({ i }: { i: number }) => {
    if (i !== next) misplaced.push(i)
    next = i + 1
    if (next === count) done()
  })
  await host.ready()
  const worker = new Worker(fixture('shutdown-worker.js'), { workerData: { port, signal: 'load', count }, execArgv: [] })
  t.teardown(() => worker.terminate())
  const errors: Error[] = []
  worker.on('error', (error) => errors.push(error))
  const messages: unknown[] = []
  worker.on('message', (message) => messages.push(message))
  const [code] = (await deadline(once(worker, 'exit'), 20_000, 'the worker to end by itself')) as [number]
  t.equal(code, 0, 'the worker ended by itself')
  t.same(errors, [], 'no error (an unhandled rejection would be one) in the worker')
  t.match(messages, [{ stopped: Number }])
  await deadline(all, 5000, `all ${count} events (got ${next})`)
  t.same(misplaced, [], 'in order, none twice')
})
