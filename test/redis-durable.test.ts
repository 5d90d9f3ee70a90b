// Durable work groups on Redis Streams: events kept for members that are down,
// jobs of a killed member finished by another, failures redelivered and then
// dead-lettered, replay from the start or from now, bounded streams.
import t, { Test } from 'tap'
import { Node, NodeOptions, PyventEvent } from '../dist/index.js'
import { deadline, fixture, portBlock, spawnNode, until, filled } from './helpers'
import { RedisServer, requireRedis, startRedis } from './redis-server'

const port = portBlock(__filename).next()
const url = `redis://127.0.0.1:${port}`
const env = { PYVENT_URL: url }

function nodeOn(t: Test, options: NodeOptions = {}): Node {
  const node = new Node({ url, ...options })
  t.teardown(() => node.stop())
  return node
}


if (requireRedis(t, 'the durable group tests')) {
  let server: RedisServer
  t.before(async () => {
    server = await startRedis(t, port)
  })

  t.test('a member restarted after events were sent while it was down catches up', async (t) => {
    const first = spawnNode(t, fixture('durable-member.js'), ['orders', 'kitchen', '30000', 'finish'], env)
    await first.line('READY')
    first.process.kill('SIGKILL')
    await first.exit()
    const sender = nodeOn(t)
    for (let i = 0; i < 5; i++) await sender.send('orders', { i })
    await sender.flush()
    t.equal(server.cli('XLEN', 'pyvent:s:orders').trim(), '5', 'the stream kept them')
    const second = spawnNode(t, fixture('durable-member.js'), ['orders', 'kitchen', '30000', 'finish'], env)
    await second.line('READY')
    for (let i = 0; i < 5; i++) await second.line(`DONE ${i}`)
    await until(() => server.cli('XPENDING', 'pyvent:s:orders', 'kitchen').startsWith('0'), 10_000, 'every entry acknowledged')
  })

  t.test('SIGKILL of a member mid-job: another member finishes it, acknowledged exactly once', async (t) => {
    const doomed = spawnNode(t, fixture('durable-member.js'), ['render', 'farm', '200', 'hang'], env)
    await doomed.line('READY')
    const sender = nodeOn(t)
    await sender.send('render', { i: 0 })
    const [, , takenId] = (await doomed.line(/^GOT 0/)).split(' ')
    const survivor = nodeOn(t)
    const done: { i: number; id: string }[] = []
    survivor.connect('render', ({ i }: { i: number }, event: PyventEvent) => void done.push({ i, id: event.id }), {
      group: 'farm',
      durable: { claimAfter: 200 }
    })
    await survivor.ready()
    doomed.process.kill('SIGKILL')
    await doomed.exit()
    await filled(done, 1, 'the survivor to take the job over')
    t.same(done[0], { i: 0, id: takenId }, 'the same event, with the same id')
    await sender.send('render', { i: 1 })
    await filled(done, 2, 'a later job')
    await until(() => server.cli('XPENDING', 'pyvent:s:render', 'farm').startsWith('0'), 10_000, 'nothing left pending')
    t.same(done.map((job) => job.i), [0, 1], 'the killed job was finished once, not again')
    const info = server.cli('XINFO', 'GROUPS', 'pyvent:s:render')
    t.match(info, /entries-read\n2\n/, 'two entries read by the group in all')
  })

  t.test('a failing handler: redelivered with the same id, then dead-lettered with its last error', async (t) => {
    const worker = nodeOn(t)
    const seen: string[] = []
    worker.on('error', () => undefined)
    worker.connect(
      'payment',
      (_payload: unknown, event: PyventEvent) => {
        seen.push(event.id)
        throw new RangeError(`declined ${seen.length}`)
      },
      { group: 'billing', durable: { claimAfter: 30, maxDeliveries: 3 } }
    )
    await worker.ready()
    const sender = nodeOn(t)
    await sender.send('payment', { amount: 12 }, { sender: 'pyvent.shop' })
    await filled(seen, 3, 'three deliveries')
    t.equal(new Set(seen).size, 1, 'one event id on every delivery')
    let letters: Awaited<ReturnType<Node['deadLetters']>> = []
    await until(async () => (letters = await worker.deadLetters('payment', 'billing')).length > 0, 10_000, 'a dead letter')
    t.match(letters, [{ id: seen[0], signal: 'payment', group: 'billing', sender: 'pyvent.shop', node: sender.nodeId, seq: 0, payload: { amount: 12 }, deliveries: 3, error: 'RangeError: declined 3' }])
    t.type(letters[0]!.deadAt, 'number')
    t.equal((await worker.stats()).deadLettered, 1)
    t.equal(seen.length, 3, 'not delivered a fourth time')
    t.match(server.cli('XPENDING', 'pyvent:s:payment', 'billing'), /^0\n/, 'nothing left pending')
    t.same(await sender.deadLetters('payment', 'billing', { count: 5 }), letters, 'any node can read them')
  })

  t.test('from "start" replays what the stream holds; from "now" takes what comes after', async (t) => {
    const sender = nodeOn(t)
    const opener = nodeOn(t)
    opener.connect('news', () => undefined, { group: 'archive', durable: true })
    await opener.ready()
    for (let i = 0; i < 3; i++) await sender.send('news', { i })
    await sender.flush()
    const replay = nodeOn(t)
    const fresh = nodeOn(t)
    const replayed: number[] = []
    const recent: number[] = []
    replay.connect('news', ({ i }: { i: number }) => void replayed.push(i), { group: 'history', durable: { from: 'start' } })
    fresh.connect('news', ({ i }: { i: number }) => void recent.push(i), { group: 'live', durable: { from: 'now' } })
    await Promise.all([replay.ready(), fresh.ready()])
    await sender.send('news', { i: 3 })
    t.same(await filled(replayed, 4, 'the replay'), [0, 1, 2, 3])
    t.same(await filled(recent, 1, 'the new event'), [3])
  })

  t.test('a durable member never holds more events than its concurrency', async (t) => {
    const member = nodeOn(t)
    let active = 0
    let peak = 0
    const done: number[] = []
    member.connect(
      'batch-job',
      async ({ i }: { i: number }) => {
        peak = Math.max(peak, ++active)
        await new Promise((resolve) => setTimeout(resolve, 2))
        active--
        done.push(i)
      },
      { group: 'pool', concurrency: 3, durable: true }
    )
    await member.ready()
    const sender = nodeOn(t)
    for (let i = 0; i < 30; i++) await sender.send('batch-job', { i })
    t.same((await filled(done, 30, 'every job')).slice().sort((a, b) => a - b), [...Array(30).keys()], 'each once')
    t.ok(peak <= 3 && peak > 1, `at most 3 at a time (peak ${peak})`)
  })

  t.test('a process whose durable member stops right after ready() exits by itself', async (t) => {
    // node-redis cannot destroy a connection still being made: a stop() during the
    // member's reader connection once left that socket open and the process alive.
    for (let i = 0; i < 5; i++) {
      const child = spawnNode(t, fixture('durable-stop.js'), ['stop-soon', `g${i}`], env)
      t.equal(await child.line(/^STOPPED/), 'STOPPED true')
      t.equal(await child.exit(10_000), 0, `run ${i + 1}: the process exited by itself`)
    }
  })

  t.test('maxStreamLength bounds the stream', async (t) => {
    const member = nodeOn(t)
    member.connect('ticks', () => undefined, { group: 'meter', durable: true })
    await member.ready()
    const sender = nodeOn(t, { maxStreamLength: 100 })
    for (let i = 0; i < 2000; i++) void sender.send('ticks', { i })
    await sender.flush()
    const length = Number(server.cli('XLEN', 'pyvent:s:ticks'))
    t.ok(length >= 100 && length < 400, `about 100 entries kept (${length})`)
  })
}
