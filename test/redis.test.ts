// The Redis engine beyond the core suite: its missing-package and no-server
// errors, names Redis could misread, plain work groups, flush and stop, and
// other Redis clients (redis-cli) on pyvent's channels.
import t, { Test } from 'tap'
import { Any, Node, NodeOptions } from '../dist/index.js'
import { join } from 'node:path'
import { createServer, type Socket } from 'node:net'
import { deadline, fixture, portBlock, spawnNode, spawnProcess, until, filled, pushedUntil } from './helpers'
import { RedisServer, requireRedis, startRedis } from './redis-server'

const ports = portBlock(__filename)
const port = ports.next()
const url = `redis://127.0.0.1:${port}`

function nodeOn(t: Test, options: NodeOptions = {}): Node {
  const node = new Node({ url, ...options })
  t.teardown(() => node.stop())
  return node
}


t.test('without the redis package: MissingDependencyError naming it, with the password masked', async (t) => {
  const secretUrl = `redis://user:secret@127.0.0.1:${port}/0`
  const child = spawnProcess(t, process.execPath, ['--require', fixture('no-redis.js'), fixture('engine-ready.js')], { env: { PYVENT_URL: secretUrl } })
  const line = await child.line(/^ERROR|^READY/)
  t.match(line, /^ERROR ERR_PYVENT_MISSING_DEPENDENCY /)
  t.match(line, `The URL redis://user:***@127.0.0.1:${port}/0 needs the npm package "redis"`)
  t.match(line, 'npm install redis')
  t.notMatch(line, 'secret', 'the password is not shown')
  t.equal(await child.exit(), 3)
})

t.test('no server at the URL: RelayUnreachableError says what answered not and what to do', async (t) => {
  const nobody = ports.next()
  const node = new Node({ url: `redis://user:pw@127.0.0.1:${nobody}`, readyTimeout: 300 })
  t.teardown(() => node.stop())
  await t.rejects(node.ready(), {
    code: 'ERR_PYVENT_RELAY_UNREACHABLE',
    message: `No Redis server answered at redis://user:***@127.0.0.1:${nobody} within 300 ms. Nothing accepts connections at 127.0.0.1:${nobody}: start redis-server there`
  })
})

t.test('deadLetters() with no server at the URL: RelayUnreachableError after readyTimeout, not a hang', async (t) => {
  const nobody = ports.next()
  const node = new Node({ url: `redis://127.0.0.1:${nobody}`, readyTimeout: 300 })
  t.teardown(() => node.stop())
  await t.rejects(node.deadLetters('invoice', 'billing'), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /^No Redis server answered/ })
})

t.test('a host name that does not resolve: the diagnosis says so, not that nothing listens there', async (t) => {
  const node = new Node({ url: 'redis://no-such-host.invalid:6379', readyTimeout: 300 })
  t.teardown(() => node.stop())
  await t.rejects(node.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /The host name "no-such-host\.invalid" does not resolve \(\w+\): fix the URL/ })
})

t.test('something other than Redis at the URL: the diagnosis says what answered there, not that the password is wrong', async (t) => {
  const servers: { port: number; answer: (socket: Socket) => void; says: RegExp }[] = [
    { port: ports.next(), answer: (s) => void s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')), says: /An HTTP server answers at 127\.0\.0\.1:\d+, not Redis/ },
    { port: ports.next(), answer: (s) => void s.write('INFO {"server_id":"x"}\r\n'), says: /A NATS server answers at 127\.0\.0\.1:\d+, not Redis: use a nats:\/\/ URL/ },
    { port: ports.next(), answer: () => undefined, says: /did not answer a PING as Redis would: a TLS server wants rediss:\/\// }
  ]
  for (const { port, answer, says } of servers) {
    const server = createServer(answer)
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => server.close(resolve)))
    // The server that never answers keeps its sockets: close them with the server.
    server.on('connection', (socket) => t.teardown(() => void socket.destroy()))
    const node = new Node({ url: `redis://127.0.0.1:${port}`, readyTimeout: 300 })
    t.teardown(() => node.stop())
    await t.rejects(node.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: says })
  }
})

if (requireRedis(t, 'the Redis engine tests')) {
  let server: RedisServer
  t.before(async () => {
    server = await startRedis(t, port)
  })

  t.test('a password the server refuses: ready() fails at once, saying to check it', async (t) => {
    // A refusal does not change by waiting: readyTimeout is not waited out (the message says how long it took).
    const node = new Node({ url: `redis://user:wrong@127.0.0.1:${port}`, readyTimeout: 60_000 })
    t.teardown(() => node.stop())
    await t.rejects(node.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /^No Redis server answered at redis:\/\/user:\*\*\*@127\.0\.0\.1:\d+ as it should \(given up after \d+ ms\)\. Redis refused the connection \("WRONGPASS.*check the user name and password/ })
  })

  t.test('a database number the server does not have: ready() fails, saying so, not blaming the password', async (t) => {
    const node = new Node({ url: `redis://127.0.0.1:${port}/99`, readyTimeout: 60_000 })
    t.teardown(() => node.stop())
    await t.rejects(node.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /as it should \(given up after \d+ ms\)\. Redis refused the database number in redis:\/\/127\.0\.0\.1:\d+\/99 \("ERR DB index is out of range"\): the server has fewer databases/ })
  })

  t.test('options that mean something on the relay only draw one warning, and are ignored', async (t) => {
    const warnings: Error[] = []
    const onWarning = (warning: Error): void => void warnings.push(warning)
    process.on('warning', onWarning)
    t.teardown(() => void process.off('warning', onWarning))
    const node = nodeOn(t, { port: 1, delivery: 'drop' })
    await node.ready()
    await new Promise((resolve) => setImmediate(resolve))
    const ignored = warnings.filter((warning) => (warning as { code?: string }).code === 'PYVENT_IGNORED_OPTION')
    t.equal(ignored.length, 1)
    t.match(ignored[0]?.message, 'Options "port", "delivery" have no effect on the redis engine')
    t.equal(node.isServer(), false, 'no relay')
  })

  t.test('names Redis could read as patterns or split: exact delivery, and Any hears each event once', async (t) => {
    const signals = ['a*', 'a?', 'a[bc]', 'a.b', 'with space', 'çå日本 ✓', '*', 'a\\*']
    const decoys = ['ab', 'ax', 'ab', 'aXb', 'with', 'çå', 'x', 'a\\b']
    const senders = ['s*', 's?', 's[1]', 's.x y', '送信者', 's']
    const listener = nodeOn(t)
    const sender = nodeOn(t)
    const exact = new Map<string, string[]>()
    const any: string[] = []
    for (const signal of signals) {
      exact.set(signal, [])
      listener.connect(signal, (_payload, event) => exact.get(signal)!.push(event.sender), { sender: Any })
    }
    listener.connect(Any, (_payload, event) => any.push(`${event.signal}|${event.sender}`), { sender: Any })
    await listener.ready()
    for (const signal of signals) for (const name of senders) await sender.send(signal, {}, { sender: name })
    for (const decoy of decoys) await sender.send(decoy, {}, { sender: 's' })
    await sender.send('zz-end', {})
    const total = signals.length * senders.length + decoys.length + 1
    await pushedUntil(any, () => any.includes('zz-end|pyvent'), 'the end marker on Any')
    for (const signal of signals) t.same(exact.get(signal), senders, `"${signal}" got its own events only, once each`)
    t.equal(any.length, total, 'Any heard each event once, although the node also listens to the signal itself')
    t.same(any.slice(0, senders.length), senders.map((name) => `a*|${name}`))
    const stats = await listener.stats()
    t.equal(stats.malformed, 0)
    t.equal(stats.duplicates, 0)
  })

  t.test('plain work group: each event to exactly one member, never more at once than its concurrency', async (t) => {
    const members = [nodeOn(t), nodeOn(t)]
    const capacity = [2, 1]
    const handled: number[][] = [[], []]
    const finished: number[] = []
    const active = [0, 0]
    const peak = [0, 0]
    members.forEach((member, index) => {
      member.connect(
        'job',
        async ({ i }: { i: number }) => {
          peak[index] = Math.max(peak[index]!, ++active[index]!)
          // Work that takes a while, so the members overlap.
          await new Promise((resolve) => setTimeout(resolve, 3))
          active[index]!--
          handled[index]!.push(i)
          finished.push(i)
        },
        { group: 'workers', concurrency: capacity[index] }
      )
    })
    const watcher = nodeOn(t)
    const all: number[] = []
    watcher.connect('job', ({ i }: { i: number }) => all.push(i))
    await Promise.all([...members, watcher].map((node) => node.ready()))
    const sender = nodeOn(t)
    for (let i = 0; i < 40; i++) await sender.send('job', { i })
    await filled(all, 40, 'the plain listener to get every event')
    await filled(finished, 40, 'the group to handle every event')
    t.same([...handled[0]!, ...handled[1]!].sort((a, b) => a - b), [...Array(40).keys()], 'each event handled exactly once')
    t.ok(peak[0]! <= 2 && peak[1]! <= 1, `within each member's concurrency (peaks ${peak.join(', ')})`)
    t.ok(handled[0]!.length > 0 && handled[1]!.length > 0, `both members took a share (${handled[0]!.length} and ${handled[1]!.length})`)
    t.same(all, [...Array(40).keys()], 'plain listeners still get every event')
  })

  t.test('plain work group: an event sent while the group has no member is not kept for it', async (t) => {
    const sender = nodeOn(t)
    const first = nodeOn(t)
    first.connect('chore', () => undefined, { group: 'crew' })
    await first.ready()
    first.disconnect('chore', undefined, { group: 'crew' })
    await first.stop()
    await sender.send('chore', { n: 'lost' })
    await sender.flush()
    const later = nodeOn(t)
    const got: string[] = []
    later.connect('chore', ({ n }: { n: string }) => got.push(n), { group: 'crew' })
    await later.ready()
    await sender.send('chore', { n: 'kept' })
    await filled(got, 1, 'the event sent after the member joined')
    await sender.send('chore', { n: 'marker' })
    await filled(got, 2, 'a marker behind it')
    t.same(got, ['kept', 'marker'])
  })

  t.test('flush() before process.exit() loses nothing', async (t) => {
    const node = nodeOn(t)
    const got: number[] = []
    node.connect('job', ({ i }: { i: number }) => got.push(i))
    await node.ready()
    const child = spawnNode(t, fixture('engine-flush-exit.js'), ['300'], { PYVENT_URL: url })
    t.equal(await child.exit(), 0)
    t.same(child.stderr, [], 'no warning of lost events')
    t.same(await filled(got, 300, 'every event'), [...Array(300).keys()])
  })

  t.test('stop() drains what was sent before it', async (t) => {
    const listener = nodeOn(t)
    const got: number[] = []
    listener.connect('burst', ({ i }: { i: number }) => got.push(i))
    await listener.ready()
    const sender = new Node({ url })
    await sender.ready()
    for (let i = 0; i < 2000; i++) void sender.send('burst', { i, pad: 'x'.repeat(100) })
    t.equal(await sender.stop(), true, 'stop() reports everything confirmed')
    t.same(await filled(got, 2000, 'every event'), [...Array(2000).keys()])
    t.equal((await sender.stats()).sent, 2000)
  })

  t.test('redis-cli publishes events pyvent receives, and reads what pyvent sends', async (t) => {
    const node = nodeOn(t)
    const got: { payload: unknown; sender: string; node: string }[] = []
    node.connect('cli-order', (payload, event) => got.push({ payload, sender: event.sender, node: event.node }), { sender: Any })
    await node.ready()
    const message = '{"v":1,"s":"cli","n":"shell","q":0,"p":[{"food":"ramen"}]}'
    t.equal(server.cli('PUBLISH', 'pyvent:e:cli-order', message).trim(), '1', 'one subscriber heard it')
    t.equal(server.cli('PUBLISH', 'pyvent:e:cli-order', 'not json').trim(), '1')
    t.same(await filled(got, 1, 'the event from redis-cli'), [{ payload: { food: 'ramen' }, sender: 'cli', node: 'shell' }])
    await node.send('cli-order', { marker: true })
    await filled(got, 2, 'a marker behind the malformed message')
    t.equal((await node.stats()).malformed, 1, 'the malformed message was dropped and counted')

    const reader = spawnProcess(t, 'redis-cli', ['-p', String(port), 'SUBSCRIBE', 'pyvent:e:from-pyvent'])
    await reader.line('1')
    await node.send('from-pyvent', { x: 1 }, { sender: 'pyvent.shop' })
    const line = await reader.line(/^\{/)
    const parsed = JSON.parse(line) as Record<string, unknown>
    t.match(parsed, { v: 1, s: 'pyvent.shop', n: node.nodeId, q: 0, p: [{ x: 1 }] })
    t.type(parsed.t, 'number')
  })

  t.test('the command line runs on Redis with --url or PYVENT_URL', async (t) => {
    const cli = join(__dirname, '..', 'dist', 'cli.js')
    const node = nodeOn(t)
    const got: unknown[] = []
    node.connect('from-cli', (payload) => void got.push(payload), { sender: Any })
    await node.ready()
    const send = spawnNode(t, cli, ['send', 'from-cli', '{"n":1}', '--url', url])
    t.equal(await send.exit(), 0)
    t.same(send.stderr, [], 'no warning about relay options')
    t.same(await filled(got, 1, 'the event from the CLI'), [{ n: 1 }])
    const wait = spawnNode(t, cli, ['wait', 'to-cli', '--timeout', '20000'], { PYVENT_URL: url })
    await until(() => wait.stderr.some((line) => line.startsWith('pyvent: waiting on')), 20_000, 'the CLI to wait')
    t.match(wait.stderr[0], `pyvent: waiting on ${url} for "to-cli"`, 'the status line names the server')
    await node.send('to-cli', { ok: true })
    t.match(JSON.parse(await wait.line(/^\{/)), { signal: 'to-cli', sender: 'pyvent', payload: { ok: true } })
    t.equal(await wait.exit(), 0)
  })
}
