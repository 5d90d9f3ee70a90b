// Real processes: the README example, a sender that hosts the relay, a race for the relay.
import { join } from 'node:path'
import t from 'tap'
import { Node } from '../dist/index.js'
import { fixture, portBlock, spawnNode, until } from './helpers'

const ports = portBlock(__filename)
const examples = join(__dirname, '..', 'examples')

t.test('the README example: listener process, then sender process', async (t) => {
  const env = { PYVENT_PORT: String(ports.next()) }
  const listener = spawnNode(t, join(examples, 'listener.mjs'), [], env)
  // The listener says it is ready on stderr; wait for it rather than for time to pass.
  await new Promise<void>((resolve) => listener.process.stderr!.once('data', () => resolve()))
  const sender = spawnNode(t, join(examples, 'sender.mjs'), [], env)
  t.equal(await sender.exit(), 0, 'the sender exits by itself')
  t.equal(await listener.line(/You ordered/), 'You ordered sushi and sake!')
})

t.test('a sender that hosts the relay delivers its event and exits by itself', async (t) => {
  const port = ports.next()
  const sender = spawnNode(t, fixture('relay-sender.js'), [String(port)])
  t.equal(await sender.line(/^READY/), 'READY true', 'the sender hosts the relay')
  const node = new Node({ port, server: false })
  t.teardown(() => node.stop())
  const order = node.waitFor('order')
  await node.ready()
  t.notOk(node.isServer(), 'the test node is a client')
  await node.send('go')
  const event = await order
  t.same(event.payload, { food: 'ramen', server: true })
  t.equal(await sender.exit(), 0, 'the relay host exited by itself after sending')
})

t.test('two processes racing for the relay: exactly one wins, both deliver', async (t) => {
  const port = ports.next()
  const a = spawnNode(t, fixture('listener.js'), [String(port), 'race', '2'])
  const b = spawnNode(t, fixture('listener.js'), [String(port), 'race', '2'])
  const roles = [await a.line(/^READY/), await b.line(/^READY/)].sort()
  t.same(roles, ['READY false', 'READY true'], 'one relay, one client')
  const sa = spawnNode(t, fixture('sender.js'), [String(port), 'race', '1'])
  t.equal(await sa.line(/^SENT/), 'SENT false', 'a third process is a client')
  t.equal(await sa.exit(), 0)
  const node = new Node({ port, server: false, id: 'test' })
  t.teardown(() => node.stop())
  await node.send('race', { i: 'from test' }, { sender: 'pyvent' })
  for (const child of [a, b]) {
    t.equal(JSON.parse(await child.line(/"i":0/)).payload.i, 0)
    t.equal(JSON.parse(await child.line(/from test/)).sender, 'pyvent')
    t.equal(await child.exit(), 0, 'each listener exits by itself after its events')
  }
})

t.test('a sender with no relay to reach fails in bounded time with a typed error', async (t) => {
  const port = ports.next()
  // server false and nothing on the port: readiness must give up after readyTimeout.
  const sender = spawnNode(t, fixture('sender.js'), [String(port), 'x', '1', 'false', '300'])
  const line = await sender.line(/^ERROR/)
  t.match(line, /^ERROR ERR_PYVENT_RELAY_UNREACHABLE No pyvent relay answered at 127\.0\.0\.1:\d+ within 300 ms/)
  t.match(line, /server: false/, 'the message says what to do')
  t.equal(await sender.exit(), 3)
})

t.test('stats() polled on the node hosting the relay leaves no listener behind', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  t.ok(await node.startServer(), 'hosts the relay')
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => void warnings.push(warning)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  // More calls than EventEmitter's default limit of 10 listeners per event.
  for (let i = 0; i < 25; i++) t.type((await node.stats()).relay?.forwarded, 'number', `call ${i + 1} has the relay's counters`)
  // Warnings are emitted on a later tick.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(
    warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
    [],
    'no MaxListenersExceededWarning'
  )
})

t.test("the relay process runs with its young generation capped (V8's --max-semi-space-size)", async (t) => {
  const port = ports.next()
  // The relay's debug lines pass through its host's stderr; the first names its V8 flags.
  const host = spawnNode(t, fixture('listener.js'), [String(port), 'unused', '1'], { DEBUG: 'pyvent:relay' })
  t.equal(await host.line(/^READY/), 'READY true', 'the fixture hosts the relay')
  const pid = Number((await host.line(/^RELAYPID/)).split(' ')[1])
  const loaded = (): string | undefined => host.stderr.find((line) => line.includes(`relay process ${pid} loaded`))
  await until(() => loaded() !== undefined, 10_000, "the relay's debug line")
  t.match(loaded(), /V8 flags: --max-semi-space-size=1\b/)
})
