// The core behaviour every engine must have, written once and run against each
// engine by its own test file (core-relay.test.ts, core-redis.test.ts, ...).
// A target says how to reach its engine: the options of a node in this process,
// and the environment of a child process or worker thread (the fixtures pick
// the engine from PYVENT_URL or PYVENT_PORT, so one fixture serves every engine).
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import type { Test } from 'tap'
import { Any, defineSignal, Node, NodeOptions, PyventEvent } from '../dist/index.js'
import { deadline, fixture, spawnNode } from './helpers'

/** How to reach one engine. */
export interface EngineTarget {
  /** Shown in test names: 'relay', 'redis', ... */
  name: string
  /** Options of a node in the test process. */
  options(): NodeOptions
  /** Environment of a child process or worker thread, naming the same engine. */
  env(): NodeJS.ProcessEnv
}

/** A node on the target, stopped in teardown. */
function nodeOn(t: Test, target: EngineTarget, extra: NodeOptions = {}): Node {
  const node = new Node({ ...target.options(), ...extra })
  t.teardown(() => node.stop())
  return node
}

/** Collects what a listener gets; `next(n)` resolves once `n` items arrived. */
function inbox<T>(): { items: T[]; push(item: T): void; next(count: number, what: string): Promise<T[]> } {
  const items: T[] = []
  const waiters = new Set<() => void>()
  return {
    items,
    push(item) {
      items.push(item)
      for (const wake of waiters) wake()
    },
    next(count, what) {
      return deadline(
        new Promise<T[]>((resolve) => {
          const check = (): void => {
            if (items.length < count) return
            waiters.delete(check)
            resolve(items.slice())
          }
          waiters.add(check)
          check()
        }),
        20_000,
        what
      )
    }
  }
}

function startWorker(t: Test, target: EngineTarget, data: object) {
  // Plain JavaScript: the worker needs none of tap's loaders.
  const worker = new Worker(fixture('engine-wait-worker.js'), { workerData: data, execArgv: [], env: { ...process.env, ...target.env() } })
  const messages = inbox<Record<string, unknown>>()
  worker.on('message', (message: Record<string, unknown>) => messages.push(message))
  const exited = once(worker, 'exit').then(([code]) => code as number)
  t.teardown(() => worker.terminate())
  let taken = 0
  return {
    next: async () => (await messages.next(++taken, 'a worker message'))[taken - 1]!,
    exit: () => deadline(exited, 20_000, 'the worker to exit by itself')
  }
}

/** Registers the core tests of `target` on `t`. */
export function coreSuite(t: Test, target: EngineTarget): void {
  const env = (): NodeJS.ProcessEnv => target.env()

  t.test(`${target.name}: two processes exchange events; a listener keeps its process alive until it disconnects`, async (t) => {
    const node = nodeOn(t, target)
    const echoes = inbox<{ payload: unknown; sender: string }>()
    node.connect('ping-echo', (payload, event) => echoes.push({ payload, sender: event.sender }), { sender: 'echo' })
    await node.ready()
    const child = spawnNode(t, fixture('engine-echo.js'), ['ping', '3'], env())
    await child.line('READY')
    await node.send('ping', { i: 0 })
    t.same(await echoes.next(1, 'the first echo'), [{ payload: { i: 0 }, sender: 'echo.child' }])
    t.equal(child.process.exitCode, null, 'the listening child is still running between events')
    await node.send('ping', { i: 1 })
    await node.send('ping', { i: 2 }, { sender: 'pyvent.tests' })
    const all = await echoes.next(3, 'three echoes')
    t.same(all.map((echo) => echo.payload), [{ i: 0 }, { i: 1 }, { i: 2 }], 'in order')
    t.same(JSON.parse(await child.line(/"i":2/)), { payload: { i: 2 }, sender: 'pyvent.tests' })
    t.equal(await child.exit(), 0, 'the child exits by itself once its listener is gone')
  })

  t.test(`${target.name}: sender filters match at dot boundaries`, async (t) => {
    const listener = nodeOn(t, target)
    const sender = nodeOn(t, target)
    const billing = inbox<string>()
    const fallback = inbox<string>()
    const every = inbox<string>()
    listener.connect('invoice', (_payload, event) => billing.push(event.sender), { sender: 'billing' })
    listener.connect('invoice', (_payload, event) => fallback.push(event.sender))
    listener.connect('invoice', (_payload, event) => every.push(event.sender), { sender: Any })
    await listener.ready()
    for (const name of ['billing', 'billing.eu', 'billingx', 'other', 'pyvent.x', 'billing.eu.vat']) {
      await sender.send('invoice', {}, { sender: name })
    }
    await sender.send('invoice', {})
    t.same(await every.next(7, 'every event'), ['billing', 'billing.eu', 'billingx', 'other', 'pyvent.x', 'billing.eu.vat', 'pyvent'], 'Any takes every sender, in order')
    t.same(billing.items, ['billing', 'billing.eu', 'billing.eu.vat'], 'a prefix matches at dot boundaries only')
    t.same(fallback.items, ['pyvent.x', 'pyvent'], 'the default filter takes pyvent and pyvent.*')
  })

  t.test(`${target.name}: waitFor in a worker thread resolves, and the worker exits by itself`, async (t) => {
    const node = nodeOn(t, target)
    await node.ready()
    const worker = startWorker(t, target, { signal: 'to-worker', timeout: 20_000 })
    t.same(await worker.next(), { ready: true })
    await node.send('to-worker', { n: 1 })
    t.same(await worker.next(), { payload: { n: 1 }, sender: 'pyvent' })
    t.equal(await worker.exit(), 0)
  })

  t.test(`${target.name}: waitFor in a child process resolves or times out, and the child exits by itself`, async (t) => {
    const node = nodeOn(t, target)
    await node.ready()
    const child = spawnNode(t, fixture('engine-wait.js'), ['to-child', '20000'], env())
    await child.line('READY')
    await node.send('to-child', { hello: 'child' })
    t.equal(await child.line(/^GOT/), 'GOT {"hello":"child"}')
    t.equal(await child.exit(), 0)
    const idle = spawnNode(t, fixture('engine-wait.js'), ['nothing', '200'], env())
    t.equal(await idle.line(/^ERROR/), 'ERROR ERR_PYVENT_TIMEOUT')
    t.equal(await idle.exit(), 0)
  })

  t.test(`${target.name}: request and reply across processes; NoRespondersError at once when nobody serves`, async (t) => {
    const node = nodeOn(t, target)
    await node.ready()
    const started = Date.now()
    await t.rejects(node.request('nobody-serves-this', {}, { timeout: 15_000 }), { code: 'ERR_PYVENT_NO_RESPONDERS', signal: 'nobody-serves-this' })
    t.ok(Date.now() - started < 5000, 'no responders is known at once, not after the timeout')
    const child = spawnNode(t, fixture('engine-responder.js'), ['add'], env())
    await child.line('READY')
    t.equal(await node.request('add', { a: 1, b: 2 }), 3)
    const answers = await Promise.all([1, 2, 3, 4].map((a) => node.request('add', { a, b: 10 })))
    t.same(answers, [11, 12, 13, 14], 'one reply per request, each to its own request')
    await t.rejects(node.request('add', { fail: 'too big' }), { code: 'ERR_PYVENT_REMOTE', remoteName: 'RangeError', message: 'too big' })
    await t.rejects(node.request('add', { hang: true }, { timeout: 200 }), { code: 'ERR_PYVENT_TIMEOUT' })
    t.equal(await node.request('add', { stop: true }), 'bye')
    t.equal(await child.exit(), 0, 'the responder exits by itself once it unregistered')
  })

  t.test(`${target.name}: typed signals validate what arrives`, async (t) => {
    const Order = defineSignal<{ food: string }>('typed-order', (payload) => {
      if (typeof (payload as { food?: unknown }).food !== 'string') throw new TypeError('food must be a string')
      return payload as { food: string }
    })
    const listener = nodeOn(t, target)
    const sender = nodeOn(t, target)
    const got = inbox<PyventEvent<{ food: string }>>()
    const errors: Error[] = []
    listener.on('error', (error) => errors.push(error))
    listener.connect(Order, (_payload, event) => got.push(event))
    listener.respond(Order, ({ food }) => food.toUpperCase())
    await listener.ready()
    await sender.send('typed-order', { food: 42 })
    await sender.send(Order, { food: 'ramen' })
    const [event] = await got.next(1, 'the valid order')
    t.same(event!.payload, { food: 'ramen' })
    t.equal(event!.signal, 'typed-order')
    t.equal(got.items.length, 1, 'the invalid payload never reached the listener')
    t.equal((await listener.stats()).invalid, 1, 'and was counted')
    t.match(errors[0], { code: 'ERR_PYVENT_LISTENER' })
    t.equal(await sender.request(Order, { food: 'sushi' }), 'SUSHI')
    await t.rejects(sender.request('typed-order', { food: [] }), { code: 'ERR_PYVENT_REMOTE', remoteName: 'TypeError' })
  })

  t.test(`${target.name}: a work-group member that awaits stop() in its handler goes on after it, and ends by itself`, async (t) => {
    const child = spawnNode(t, fixture('group-stop.js'), ['stop-job', 'stoppers', '3'], env())
    t.equal(await child.line(/^READY|^ERROR/), 'READY')
    const sender = nodeOn(t, target)
    for (let i = 0; i < 10; i++) await sender.send('stop-job', { i })
    await sender.flush()
    t.equal(await child.line(/^AFTER-STOP/), 'AFTER-STOP', 'the code after `await stop()` ran')
    t.equal(await child.exit(), 0, 'exit code 0, without process.exit()')
  })

  t.test(`${target.name}: a script that only sends exits by itself, and what it sent arrives`, async (t) => {
    const node = nodeOn(t, target)
    const got = inbox<unknown>()
    node.connect('from-script', (payload) => got.push(payload))
    await node.ready()
    const child = spawnNode(t, fixture('engine-send.js'), ['from-script', '3'], env())
    t.equal(await child.line(/^SENT|^ERROR/), 'SENT')
    t.equal(await child.exit(), 0, 'exit code 0, without process.exit()')
    t.same(await got.next(3, 'the three events'), [{ i: 0 }, { i: 1 }, { i: 2 }])
    const stats = await node.stats()
    t.equal(stats.gaps, 0)
    t.ok(stats.received >= 3)
  })
}
