// Work groups deal events, one by one, to members with room: a member takes at
// most `concurrency` unfinished events, whatever the senders' batching.
import t, { Test } from 'tap'
import { Node } from '../dist/index.js'
import { Child, fixture, portBlock, spawnNode } from './helpers'

const ports = portBlock(__filename)

const handled = (member: Child): number[] =>
  member.lines.filter((line) => line.startsWith('GOT ')).map((line) => Number(line.slice(4)))

/** Resolves once the members together have started `count` jobs (checked whenever one prints a line). */
async function started(members: Child[], count: number): Promise<void> {
  const done = (): boolean => members.reduce((sum, member) => sum + handled(member).length, 0) >= count
  if (done()) return
  await Promise.race(members.map((member) => member.line((line) => line === member.lines.at(-1) && done(), 60_000)))
}

function members(t: Test, port: number, specs: [concurrency: number, work: string][]): Child[] {
  return specs.map(([concurrency, work]) => spawnNode(t, fixture('group-worker.js'), [String(port), 'resize', 'resizers', String(concurrency), work]))
}

t.test('the plain loop `await send()` 300 times spreads over three idle members', async (t) => {
  const port = ports.next()
  const producer = new Node({ port })
  t.teardown(() => producer.stop())
  await producer.ready()
  // Jobs that wait (as for I/O) rather than spin: how fast each member finishes is then
  // the job's, not how much of this 2-core machine's CPU its process happens to get.
  const group = members(t, port, [[1, 'async:5'], [1, 'async:5'], [1, 'async:5']])
  for (const member of group) await member.line('READY')
  for (let i = 0; i < 300; i++) await producer.send('resize', { i })
  await started(group, 300)
  const all = group.flatMap(handled).sort((a, b) => a - b)
  t.same(all, Array.from({ length: 300 }, (_, i) => i), 'every job handled once')
  const shares = group.map((member) => handled(member).length)
  t.ok(shares.every((share) => share <= 120), `no member got more than 40% (${shares.join(', ')})`)
})

t.test('a busy member gets no more than it can take: the slow one handles few', async (t) => {
  const port = ports.next()
  const producer = new Node({ port })
  t.teardown(() => producer.stop())
  await producer.ready()
  const [slow, fast1, fast2] = members(t, port, [[1, '200'], [1, '1'], [1, '1']]) as [Child, Child, Child]
  for (const member of [slow, fast1, fast2]) await member.line('READY')
  for (let i = 0; i < 300; i++) await producer.send('resize', { i })
  await started([slow, fast1, fast2], 300)
  const all = [slow, fast1, fast2].flatMap(handled).sort((a, b) => a - b)
  t.same(all, Array.from({ length: 300 }, (_, i) => i), 'every job handled once')
  // Round-robin would give the slow member 100 jobs (20 s of work); room-based dealing
  // gives it one job per 200 ms while the fast members drain the rest.
  t.ok(handled(slow).length <= 15, `the slow member handled ${handled(slow).length} of 300`)
  const stats = (await producer.stats()).relay!
  t.equal(stats.groupLost, 0, 'nothing lost')
  t.equal(stats.groupWaiting, 0, 'nothing left waiting')
})

t.test('a member that dies loses at most its unfinished events, and the relay counts them', async (t) => {
  const port = ports.next()
  const producer = new Node({ port })
  t.teardown(() => producer.stop())
  await producer.ready()
  const [stuck] = members(t, port, [[2, 'hang']]) as [Child]
  await stuck.line('READY')
  for (let i = 0; i < 2; i++) await producer.send('resize', { i })
  await started([stuck], 2)
  const [worker] = members(t, port, [[1, '0']]) as [Child]
  await worker.line('READY')
  for (let i = 2; i < 100; i++) await producer.send('resize', { i })
  await started([worker], 98)
  t.same(handled(stuck), [0, 1], 'the stuck member took two (its concurrency) and was given no more')
  stuck.process.kill('SIGKILL')
  await stuck.exit()
  // A probe from a fresh node proves the relay has seen the dead member's connection go.
  const witness = new Node({ port, server: false })
  t.teardown(() => witness.stop())
  await witness.ready()
  await producer.ready()
  const stats = (await producer.stats()).relay!
  t.equal(stats.groupLost, 2, 'the two unfinished events are counted as lost')
  t.same(handled(worker), Array.from({ length: 98 }, (_, i) => i + 2), 'the live member handled every later job')
})

t.test('concurrency is checked', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  t.throws(() => node.connect('x', () => undefined, { concurrency: 2 }), { name: 'TypeError', message: /work-group listeners only/ })
  t.throws(() => node.connect('x', () => undefined, { group: 'g', concurrency: 0 }), { name: 'TypeError', message: /integer from 1/ })
  t.throws(() => node.connect('x', () => undefined, { group: 'g', concurrency: 1.5 }), { name: 'TypeError', message: /integer from 1/ })
})
