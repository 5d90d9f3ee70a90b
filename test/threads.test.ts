// waitFor in worker threads and child processes, each exiting by itself.
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import t, { Test } from 'tap'
import { Node } from '../dist/index.js'
import { deadline, fixture, portBlock, spawnNode } from './helpers'

const ports = portBlock(__filename)

/** A relay for the test, stopped in teardown. */
async function relay(t: Test, port: number): Promise<Node> {
  const node = new Node({ port })
  t.teardown(() => node.stop())
  await node.ready()
  return node
}

function startWorker(t: Test, data: object) {
  // The fixture is plain JavaScript: it needs none of tap's loaders.
  const worker = new Worker(fixture('wait-worker.js'), { workerData: data, execArgv: [] })
  // Every message is kept from the start: one that arrives before next() is called is not lost.
  const inbox: Record<string, unknown>[] = []
  let wake: (() => void) | undefined
  worker.on('message', (message: Record<string, unknown>) => {
    inbox.push(message)
    wake?.()
  })
  const next = async (): Promise<Record<string, unknown>> => {
    if (inbox.length === 0) await deadline(new Promise<void>((resolve) => (wake = resolve)), 20_000, 'a worker message')
    return inbox.shift()!
  }
  const exited = once(worker, 'exit').then(([code]) => code as number)
  t.teardown(() => worker.terminate())
  return { worker, next, exit: () => deadline(exited, 20_000, 'the worker to exit by itself') }
}

t.test('waitFor in a worker thread resolves, and the worker exits by itself', async (t) => {
  const port = ports.next()
  const node = await relay(t, port)
  const worker = startWorker(t, { port, signal: 'to-worker', timeout: 20_000 })
  t.same(await worker.next(), { ready: true })
  await node.send('to-worker', { n: 1 })
  t.same(await worker.next(), { payload: { n: 1 }, sender: 'pyvent' })
  t.equal(await worker.exit(), 0)
})

t.test('waitFor in a worker thread times out, and the worker exits by itself', async (t) => {
  const port = ports.next()
  await relay(t, port)
  const worker = startWorker(t, { port, signal: 'nothing', timeout: 200 })
  const first = await worker.next()
  const result = first.ready === true ? await worker.next() : first
  t.same(result, { error: 'ERR_PYVENT_TIMEOUT' })
  t.equal(await worker.exit(), 0)
})

t.test('two worker threads each have their own default node and talk to each other', async (t) => {
  const port = ports.next()
  const node = await relay(t, port)
  const a = startWorker(t, { port, signal: 'to-a', timeout: 20_000 })
  const b = startWorker(t, { port, signal: 'to-b', timeout: 20_000 })
  t.same([await a.next(), await b.next()], [{ ready: true }, { ready: true }])
  await node.send('to-b', 'b')
  t.same(await b.next(), { payload: 'b', sender: 'pyvent' })
  await node.send('to-a', 'a')
  t.same(await a.next(), { payload: 'a', sender: 'pyvent' })
  t.same([await a.exit(), await b.exit()], [0, 0])
})

t.test('waitFor in a child process resolves, and the child exits by itself', async (t) => {
  const port = ports.next()
  const node = await relay(t, port)
  const child = spawnNode(t, fixture('wait.js'), [String(port), 'to-child', '20000'])
  await child.line('READY')
  await node.send('to-child', { hello: 'child' })
  t.equal(await child.line(/^GOT/), 'GOT {"hello":"child"}')
  t.equal(await child.exit(), 0)
})

t.test('waitFor in a child process times out, and the child exits by itself', async (t) => {
  const port = ports.next()
  await relay(t, port)
  const child = spawnNode(t, fixture('wait.js'), [String(port), 'nothing', '200'])
  t.equal(await child.line(/^ERROR/), 'ERROR ERR_PYVENT_TIMEOUT')
  t.equal(await child.exit(), 0)
})
