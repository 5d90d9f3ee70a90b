// Work groups: each event goes to exactly one live member of each group.
import t from 'tap'
import { Any, Node } from '../dist/index.js'
import { Child, fixture, portBlock, spawnNode } from './helpers'

const ports = portBlock(__filename)

/** Yields to the event loop, so the next sends form a new batch (the relay deals out batches). */
const nextTick = () => new Promise((resolve) => setImmediate(resolve))

/** Resolves once `done()` holds, checked (once) whenever any of the members prints a line. */
const until = (members: Child[], done: () => boolean) =>
  done() ? Promise.resolve() : Promise.race(members.map((member) => member.line((line) => line === member.lines.at(-1) && done())))

const handled = (member: Child): number[] =>
  member.lines.filter((line) => line.startsWith('GOT ')).map((line) => Number(line.slice(4)))

t.test('3 member processes share 3,000 events, each handled exactly once', async (t) => {
  const port = ports.next()
  const relay = new Node({ port })
  t.teardown(() => relay.stop())
  await relay.ready()
  const members = [0, 1, 2].map(() => spawnNode(t, fixture('group-member.js'), [String(port), 'resize', 'resizers']))
  for (const member of members) await member.line('READY')
  // A plain listener still gets every event.
  let plain = 0
  relay.connect('resize', () => void plain++)
  await relay.ready()
  // Jobs arrive 10 per tick: the relay deals out messages, and one tick's sends are one message.
  for (let i = 0; i < 3000; i++) {
    await relay.send('resize', { i })
    if (i % 10 === 9) await nextTick()
  }
  await until(members, () => members.flatMap(handled).length >= 3000)
  const all = members.flatMap(handled).sort((a, b) => a - b)
  await relay.ready() // the plain listener is behind this probe
  t.equal(all.length, 3000, 'every event was handled once')
  t.same(all, Array.from({ length: 3000 }, (_, i) => i), 'no event twice, none missing')
  const shares = members.map((member) => handled(member).length)
  t.ok(shares.every((share) => share >= 500), `the load is spread (${shares.join(', ')})`)
  t.equal(plain, 3000, 'plain listeners are not affected by groups')
})

t.test('a member that dies stops receiving; the others take every later event', async (t) => {
  const port = ports.next()
  const relay = new Node({ port })
  t.teardown(() => relay.stop())
  await relay.ready()
  const [a, b, c] = [0, 1, 2].map(() => spawnNode(t, fixture('group-member.js'), [String(port), 'job', 'workers'])) as [Child, Child, Child]
  for (const member of [a, b, c]) await member.line('READY')
  for (let i = 0; i < 300; i++) {
    await relay.send('job', { i })
    if (i % 10 === 9) await nextTick()
  }
  await until([a, b, c], () => [a, b, c].flatMap(handled).length >= 300)
  t.ok(handled(a).length > 0, 'the member to be killed had its share')
  a.process.kill('SIGKILL')
  await a.exit()
  // A probe from a fresh node proves the relay has seen the dead member's connection go.
  const witness = new Node({ port, server: false })
  t.teardown(() => witness.stop())
  await witness.ready()
  for (let i = 300; i < 600; i++) {
    await relay.send('job', { i })
    if (i % 10 === 9) await nextTick()
  }
  const later = () => [...handled(b), ...handled(c)].filter((i) => i >= 300).sort((x, y) => x - y)
  await until([b, c], () => later().length >= 300)
  t.same(later(), Array.from({ length: 300 }, (_, i) => 300 + i), 'every event after the death went to a live member, once')
  t.ok(handled(b).some((i) => i >= 300) && handled(c).some((i) => i >= 300), 'both survivors share the later events')
  t.ok(handled(a).every((i) => i < 300), 'the dead member got nothing after it died')
})

t.test('groups need one signal and a valid name', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  t.throws(() => node.connect(Any, () => undefined, { group: 'g' }), { name: 'TypeError', message: /one signal, not Any/ })
  t.throws(() => node.connect('x', () => undefined, { group: '' }), { name: 'TypeError', message: /group/ })
  t.throws(() => node.connect('x', () => undefined, { group: 'g', sender: 'billing' }), { name: 'TypeError', message: /every sender/ })
  // Control characters take six bytes each once JSON-escaped in the group topic.
  t.throws(() => node.connect('\u0001'.repeat(255), () => undefined, { group: '\u0001'.repeat(255) }), { name: 'TypeError', message: /too long/ })
  const cb = () => undefined
  node.connect('x', cb, { group: 'g' })
  t.equal(node.disconnect('x', cb), 0, 'a plain disconnect does not touch group listeners')
  t.equal(node.disconnect('x', cb, { group: 'g' }), 1)
})

t.test('only responders answer: listeners and group members of the signal never do', async (t) => {
  const port = ports.next()
  const relay = new Node({ port })
  const other = new Node({ port, server: false })
  t.teardown(async () => {
    await other.stop()
    await relay.stop()
  })
  let heard = 0
  other.connect('price', () => ++heard)
  other.connect('price', () => ++heard, { group: 'pricers' })
  await relay.ready()
  await other.ready()
  const refused = await relay.request('price', {}).catch((error: unknown) => error)
  t.match(refused, { name: 'NoRespondersError', code: 'ERR_PYVENT_NO_RESPONDERS', signal: 'price' }, 'no responder: refused at once')
  other.respond('price', () => 42)
  await other.ready()
  t.equal(await relay.request('price', {}), 42, 'the responder answers')
  await relay.ready()
  t.equal(heard, 0, 'the plain listener and the group member never saw the requests')
})

t.test('a responder that throws something other than an Error: the RemoteError says what it threw', async (t) => {
  const port = ports.next()
  const node = new Node({ port })
  t.teardown(() => node.stop())
  node.respond('thrown', (kind: unknown) => {
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    throw kind === 'object' ? { reason: 'out of stock', sku: 7 } : kind === 'message' ? { message: 'no such sku' } : 'plain text'
  })
  await node.ready()
  await t.rejects(node.request('thrown', 'object'), { code: 'ERR_PYVENT_REMOTE', remoteName: 'Error', message: '{"reason":"out of stock","sku":7}' })
  await t.rejects(node.request('thrown', 'message'), { code: 'ERR_PYVENT_REMOTE', message: 'no such sku' })
  await t.rejects(node.request('thrown', 'string'), { code: 'ERR_PYVENT_REMOTE', message: 'plain text' })
})
