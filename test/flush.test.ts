// "Sent" means delivered to the relay, or the user is told: flush(), stop()'s
// result, and the line on stderr when a process exits with events unconfirmed.
import t from 'tap'
import { Node, TimeoutError } from '../dist/index.js'
import { deadline, fixture, listenerAndSender, portBlock, spawnNode } from './helpers'

const ports = portBlock(__filename)

t.test('flush() resolves once everything sent before it has passed the relay', async (t) => {
  const port = ports.next()
  const { listener, sender } = listenerAndSender(t, port)
  let got = 0
  listener.connect('job', () => void got++)
  await listener.ready()
  // Not awaited, and before the sender is even ready: flush() still covers them.
  for (let i = 0; i < 1000; i++) void sender.send('job', { i })
  await sender.flush()
  t.same((await sender.stats()).sent, 1000, 'all 1000 were queued')
  const after = listener.waitFor('marker')
  await sender.send('marker', {})
  await deadline(after, 10_000, 'the marker')
  t.equal(got, 1000, 'every event flushed was delivered')
  await t.resolves(sender.flush(), 'a second flush with nothing new resolves at once')
  t.equal(await sender.stop(), true, 'stop() resolves true: everything was confirmed')
})

t.test('flush() rejects with TimeoutError when the relay cannot confirm within linger', async (t) => {
  const port = ports.next()
  const relay = spawnNode(t, fixture('listener.js'), [String(port), 'unused', '1'])
  t.equal(await relay.line(/^READY/), 'READY true')
  const pid = Number((await relay.line(/^RELAYPID/)).split(' ')[1])
  const sender = new Node({ port, server: false, linger: 300 })
  t.teardown(() => sender.stop())
  await sender.ready()
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => process.kill(pid, 'SIGKILL'))
  await sender.send('job', { i: 1 })
  const error = await sender.flush().catch((caught: unknown) => caught)
  t.ok(error instanceof TimeoutError, 'a TimeoutError')
  t.match(error, { code: 'ERR_PYVENT_TIMEOUT', timeout: 300, message: /did not confirm 1 event within linger \(300 ms\)/ })
  t.equal(await sender.stop(), false, 'stop() resolves false: its flush gave up too')
})

t.test('a script that flushes before process.exit() delivers everything and prints nothing', async (t) => {
  const port = ports.next()
  const listener = new Node({ port })
  t.teardown(() => listener.stop())
  let got = 0
  let done: () => void
  const all = new Promise<void>((resolve) => (done = resolve))
  listener.connect('job', () => {
    if (++got === 500) done()
  })
  await listener.ready()
  const child = spawnNode(t, fixture('flush-exit.js'), [String(port), '500'])
  t.equal(await child.exit(), 0)
  await deadline(all, 10_000, 'all 500 events')
  t.equal(got, 500, 'all delivered although the script called process.exit()')
  t.same(child.stderr, [], 'nothing on stderr')
})

t.test('stats() can be read after stop(), and adds up over restarts', async (t) => {
  const port = ports.next()
  const node = new Node({ port })
  t.teardown(() => node.stop())
  await node.send('a', {})
  await node.stop()
  const stopped = await node.stats()
  t.equal(stopped.sent, 1, 'the count survives stop()')
  t.type(stopped.relay?.forwarded, 'number', 'and so do the relay counters of the last life')
  await node.send('a', {})
  t.equal((await node.stats()).sent, 2, 'a restarted node goes on counting')
})

t.test('process.exit() in the tick of the first send(), before the node started, still says what may be lost', async (t) => {
  const child = spawnNode(t, fixture('send-exit-early.js'), ['3'], { PYVENT_PORT: String(ports.next()) })
  t.equal(await child.exit(), 4, 'the exit code the script chose')
  t.match(child.stderr.join('\n'), /pyvent: 3 messages \(events, requests or replies\) sent by this process may be lost: it exited before the relay \(or server\) confirmed them/)
})
