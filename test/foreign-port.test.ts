// Ports held by programs that do not speak pyvent fail fast with a typed error;
// arguments pyvent cannot use are TypeErrors before anything starts.
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createNetServer, Server, Socket } from 'node:net'
import t, { Test } from 'tap'
import { Pull, Publisher, Router } from 'zeromq'
import { Any, defineSignal, Node, RelayUnreachableError } from '../dist/index.js'
import { resolveOptions } from '../dist/options.js'
import { canBind, deadline, portBlock } from './helpers'

const ports = portBlock(__filename)

/** Short, so that every failure below is quick; the deadlines allow for a slow machine. */
const READY_TIMEOUT = 500
const SLACK = 2000

/**
 * Holds `port` on loopback with a program that does not speak pyvent until
 * `release()` or teardown: an HTTP server (answers the ZeroMQ greeting with
 * "400 Bad Request" and hangs up) or a TCP server that accepts connections and
 * never says anything.
 */
async function hold(t: Test, port: number, kind: 'http' | 'silent'): Promise<{ release(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: Server =
    kind === 'http' ? createHttpServer((_request, response) => response.end('not pyvent\n')) : createNetServer(() => undefined)
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen({ host: '127.0.0.1', port, exclusive: true })
  await once(server, 'listening')
  const release = async (): Promise<void> => {
    if (!server.listening) return
    const closed = new Promise((resolve) => server.close(resolve))
    for (const socket of sockets) socket.destroy()
    await closed
  }
  t.teardown(release)
  return { release }
}

/**
 * ready(), send() and waitFor() of `node`, started together, must each reject with
 * RelayUnreachableError naming the port and saying what to do, within a bounded time.
 */
async function expectUnreachable(t: Test, node: Node, port: number, held: number[] = [port, port + 1]): Promise<void> {
  const started = Date.now()
  const results = await deadline(
    Promise.allSettled([node.ready(), node.send('order', { food: 'sushi' }), node.waitFor('order')]),
    READY_TIMEOUT + SLACK,
    'ready(), send() and waitFor() to fail'
  )
  const elapsed = Date.now() - started
  for (const [what, result] of [['ready()', results[0]], ['send()', results[1]], ['waitFor()', results[2]]] as const) {
    if (result.status === 'fulfilled') {
      t.fail(`${what} resolved`)
      continue
    }
    const error = result.reason as RelayUnreachableError
    t.ok(error instanceof RelayUnreachableError, `${what} rejects with RelayUnreachableError`)
    t.match(
      error,
      {
        code: 'ERR_PYVENT_RELAY_UNREACHABLE',
        host: '127.0.0.1',
        port,
        message: `No pyvent relay answered at 127.0.0.1:${port} within ${READY_TIMEOUT} ms.`
      },
      `${what}: the error names the address and the time waited`
    )
    // The hint says what is actually there: both ports held, or only one of them.
    const hint =
      held.length === 2
        ? `Something listens on ports ${port} and ${port + 1} but does not answer as a pyvent relay`
        : `Port ${held[0]} is held by a program that is not a pyvent relay`
    t.match(error.message, hint, `${what}: the message names the held port(s)`)
    t.match(error.message, /choose other ports with the port option or PYVENT_PORT/, `${what}: the message says what to do`)
  }
  t.ok(elapsed < READY_TIMEOUT + SLACK, `all three failed after ${elapsed} ms (readyTimeout ${READY_TIMEOUT} ms)`)
  t.notOk(node.isServer(), 'the node did not become a relay')
  t.equal((await node.stats()).relay, undefined, 'no relay counters: it hosts nothing')
  // A node that never reached a relay has nothing to flush: stop() must not wait for linger.
  const stopping = Date.now()
  await deadline(node.stop(), SLACK, 'stop() after the failure')
  t.ok(Date.now() - stopping < node.options.linger, 'stop() does not wait for linger')
}

/** A node with a short readyTimeout, stopped in teardown. */
function node(t: Test, port: number, options: { server?: boolean } = {}): Node {
  const created = new Node({ port, readyTimeout: READY_TIMEOUT, ...options })
  t.teardown(() => created.stop())
  return created
}

t.test('an HTTP server on both ports: ready, send and waitFor fail fast with a typed error', async (t) => {
  const port = ports.next()
  await hold(t, port, 'http')
  await hold(t, port + 1, 'http')
  await expectUnreachable(t, node(t, port), port)
})

t.test('a TCP server that accepts and never answers: the same bounded failure, not a hang', async (t) => {
  const port = ports.next()
  await hold(t, port, 'silent')
  await hold(t, port + 1, 'silent')
  await expectUnreachable(t, node(t, port), port)
})

t.test('a ZeroMQ program that is not a relay: compatible sockets, but nothing comes back', async (t) => {
  const port = ports.next()
  // The right socket types on the right ports, so every handshake succeeds: only the relaying is missing.
  const pub = new Publisher({ linger: 0 })
  const pull = new Pull({ linger: 0 })
  t.teardown(() => {
    pub.close()
    pull.close()
  })
  await pub.bind(`tcp://127.0.0.1:${port}`)
  await pull.bind(`tcp://127.0.0.1:${port + 1}`)
  await expectUnreachable(t, node(t, port), port)
})

t.test('a ZeroMQ program of the wrong socket type on both ports: the same bounded failure', async (t) => {
  const port = ports.next()
  const routers = [new Router({ linger: 0 }), new Router({ linger: 0 })]
  t.teardown(() => routers.forEach((router) => router.close()))
  await routers[0]!.bind(`tcp://127.0.0.1:${port}`)
  await routers[1]!.bind(`tcp://127.0.0.1:${port + 1}`)
  await expectUnreachable(t, node(t, port), port)
})

t.test('only the publisher port is held: the node stays a client and never binds the other port', async (t) => {
  const port = ports.next()
  await hold(t, port, 'http')
  const held = node(t, port)
  t.notOk(await held.startServer(), 'startServer() says it could not host the relay')
  t.ok(await canBind(port + 1), 'the free port was not taken: no half relay')
  await expectUnreachable(t, held, port, [port])
  t.ok(await canBind(port + 1), 'still free after the failure')
})

t.test('only the pull port is held: the node stays a client and never binds the other port', async (t) => {
  const port = ports.next()
  await hold(t, port + 1, 'http')
  const held = node(t, port)
  t.notOk(await held.startServer(), 'startServer() says it could not host the relay')
  t.ok(await canBind(port), 'the free port was not taken: no half relay')
  await expectUnreachable(t, held, port, [port + 1])
  t.ok(await canBind(port), 'still free after the failure')
})

t.test('once the foreign program lets go, the same node reaches a relay', async (t) => {
  const port = ports.next()
  const holders = [await hold(t, port, 'http'), await hold(t, port + 1, 'http')]
  const recovering = node(t, port)
  await t.rejects(recovering.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE' })
  await Promise.all(holders.map((holder) => holder.release()))
  await recovering.stop()
  const got = recovering.waitFor('back')
  await deadline(recovering.ready(), READY_TIMEOUT + SLACK, 'ready() once the ports are free')
  t.ok(recovering.isServer(), 'it now hosts the relay itself')
  await recovering.send('back', { ok: true })
  t.same((await got).payload, { ok: true })
})

t.test('options the existing tests do not cover are TypeErrors that name the option', async (t) => {
  const bad: [unknown, RegExp][] = [
    ['50020', /must be an object, got string/],
    [{ port: 1.5 }, /"port" must be an integer from 1 to 65534, got 1\.5/],
    [{ port: '29260' }, /"port" must be an integer from 1 to 65534, got "29260"\./],
    [{ port: Number.NaN }, /"port"/],
    [{ port: -1 }, /"port"/],
    [{ linger: 3_600_001 }, /"linger" must be an integer from 0 to 3600000/],
    [{ readyTimeout: 0 }, /"readyTimeout" must be an integer from 1/],
    [{ heartbeatInterval: 9 }, /"heartbeatInterval" must be an integer from 10/],
    [{ relayTimeout: 19 }, /"relayTimeout" must be an integer from 20/],
    [{ maxMessageSize: 255 }, /"maxMessageSize" must be an integer from 256/],
    [{ maxMessageSize: 4096.5 }, /"maxMessageSize"/],
    [{ highWaterMark: 0 }, /"highWaterMark" must be an integer from 1/],
    [{ id: '.a' }, /"id"/],
    [{ id: 'a.' }, /"id"/],
    [{ id: 'a..b' }, /"id"/],
    [{ id: 'é' }, /"id"/],
    [{ host: 'a/b' }, /"host"/],
    [{ host: 5 }, /"host"/],
    [{ server: 1 }, /"server"/],
    [{ delivery: 'LOSSLESS' }, /"delivery"/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => new Node(options as object), { name: 'TypeError', message }, JSON.stringify(options))
  }
  t.equal(new Node({ port: 65534 }).options.port, 65534, 'the highest port whose pull port (65535) exists')
  t.equal(new Node({ port: 1 }).options.port, 1)
  for (const raw of ['0', '65535', '1e3', '-1', ' 80', '80 ', '0x50']) {
    t.throws(() => resolveOptions({}, { PYVENT_PORT: raw }), { name: 'TypeError', message: /PYVENT_PORT/ }, `PYVENT_PORT=${JSON.stringify(raw)}`)
  }
  t.throws(() => resolveOptions({}, { PYVENT_HOST: 'a b' }), { name: 'TypeError', message: /"host"/ }, 'PYVENT_HOST is checked too')
})

t.test('bad and reserved names are TypeErrors everywhere, and never start the node', async (t) => {
  const port = ports.next()
  const checked = node(t, port)
  const noop = (): undefined => undefined
  const long = 'é'.repeat(128) // 128 characters, 256 bytes of UTF-8
  const Reserved = defineSignal('$h')
  // Names with a NUL, longer than 255 bytes, or reserved, in every place a name goes.
  await t.rejects(checked.send('a\0b', {}), { name: 'TypeError', message: /NUL/ })
  await t.rejects(checked.send(long, {}), { name: 'TypeError', message: /255 bytes/ })
  await t.rejects(checked.send('x', {}, { sender: '$relay' }), { name: 'TypeError', message: /reserved/ })
  await t.rejects(checked.send('x', {}, { sender: Any as unknown as string }), { name: 'TypeError', message: /symbol/ })
  await t.rejects(checked.send(Reserved, {}), { name: 'TypeError', message: /reserved/ }, 'a typed signal with a reserved name')
  await t.rejects(checked.send(null as unknown as string, {}), { name: 'TypeError', message: /A signal must be/ })
  // UTF-8 has no lone surrogate: it would arrive as U+FFFD, under another name nobody listens to.
  await t.rejects(checked.send('cut\ud83d', {}), { name: 'TypeError', code: 'ERR_PYVENT_INVALID_ARGUMENT', message: /half of a UTF-16 surrogate pair/ })
  t.throws(() => checked.connect('x', noop, { group: '\ude00g' }), { name: 'TypeError', message: /The group holds half of a UTF-16 surrogate pair/ })
  await t.rejects(checked.send('x', {}, { sender: 'a\udc00' }), { name: 'TypeError', message: /The sender holds half/ })
  await t.rejects(checked.waitFor('$r.someone'), { name: 'TypeError', message: /reserved/ })
  await t.rejects(checked.waitFor('a\0b'), { name: 'TypeError', message: /NUL/ })
  await t.rejects(checked.waitFor('x', { sender: '$x' }), { name: 'TypeError', message: /reserved/ })
  await t.rejects(checked.waitFor('x', 'pyvent' as unknown as object), { name: 'TypeError', message: 'waitFor() options must be an object, got "pyvent".' })
  await t.rejects(checked.waitFor('x', { timeout: Number.NaN }), { name: 'TypeError', message: /timeout/ })
  await t.rejects(checked.request('$q', {}), { name: 'TypeError', message: /reserved/ })
  await t.rejects(checked.request('x', {}, { timeout: -5 }), { name: 'TypeError', message: /timeout/ })
  t.throws(() => checked.connect('a\0b', noop), { name: 'TypeError', message: /NUL/ })
  t.throws(() => checked.connect(long, noop), { name: 'TypeError', message: /255 bytes/ })
  t.throws(() => checked.connect(Reserved, noop), { name: 'TypeError', message: /reserved/ })
  t.throws(() => checked.connect('x', noop, { sender: '$x' }), { name: 'TypeError', message: /reserved/ })
  t.throws(() => checked.connect('x', noop, { group: '$g' }), { name: 'TypeError', message: /reserved/ })
  t.throws(() => checked.connect('x', noop, 'pyvent' as unknown as object), { name: 'TypeError', message: 'connect() options must be an object, got "pyvent".' })
  t.throws(() => checked.connect(undefined as unknown as string, noop), { name: 'TypeError', message: /A signal must be/ })
  t.throws(() => checked.connect('x', 42 as unknown as () => void), { name: 'TypeError', message: /the listener must be a function, got number/ })
  // Argument errors carry a stable code, like every error pyvent raises.
  t.throws(() => checked.connect('a\0b', noop), { name: 'TypeError', code: 'ERR_PYVENT_INVALID_ARGUMENT' })
  await t.rejects(checked.send('', {}), { name: 'TypeError', code: 'ERR_PYVENT_INVALID_ARGUMENT' })
  await t.rejects(checked.request('x', {}, { timeout: -5 }), { code: 'ERR_PYVENT_INVALID_ARGUMENT' })
  t.throws(() => new Node({ port: -1 }), { name: 'TypeError', code: 'ERR_PYVENT_INVALID_ARGUMENT' })
  t.throws(() => checked.connect('x', null as unknown as () => void), { name: 'TypeError', message: /the listener must be a function, got null/ })
  t.throws(() => checked.connect('x', undefined as unknown as () => void, {}), { name: 'TypeError', message: /the listener must be a function, got undefined/ })
  t.throws(() => checked.emits('$x'), { name: 'TypeError', message: /reserved/ })
  t.throws(() => defineSignal(5 as unknown as string), { name: 'TypeError' })
  t.throws(() => defineSignal('x', 5 as unknown as () => unknown), { name: 'TypeError', message: /validator/ })
  t.notOk(checked.isStarted(), 'no refused call started the node')
  // The limits are exact: 255 bytes is a name, and '$' is reserved only at the start.
  t.doesNotThrow(() => checked.connect('a'.repeat(255), noop))
  t.doesNotThrow(() => checked.connect('price-in-$', noop))
})

t.test('a misspelt option of any method is an InvalidArgumentError naming the known ones, never a silent default', async (t) => {
  const checked = node(t, ports.next())
  const noop = (): undefined => undefined
  const invalid = (message: string): { name: string; code: string; message: string } => ({ name: 'TypeError', code: 'ERR_PYVENT_INVALID_ARGUMENT', message })
  // A plain listener where a work-group member was meant would take every event.
  t.throws(() => checked.connect('x', noop, { gruop: 'workers' } as object), invalid('Unknown option "gruop" in connect() options. Known options: sender, group, concurrency, durable.'))
  t.throws(() => checked.connect('x', { concurency: 2 } as object), invalid('Unknown option "concurency" in connect() options. Known options: sender, group, concurrency, durable.'), 'as a decorator too')
  await t.rejects(checked.waitFor('x', { timout: 5 } as object), invalid('Unknown option "timout" in waitFor() options. Known options: sender, group, concurrency, durable, timeout, abortSignal, send.'))
  await t.rejects(checked.waitFor('x', { send: { signal: 'y', sneder: 'me' } as never }), invalid('Unknown option "sneder" in The send option of waitFor(). Known options: signal, payload, sender.'))
  await t.rejects(checked.send('x', {}, { timeout: 5 } as object), invalid('Unknown option "timeout" in send() options. Known options: sender.'))
  await t.rejects(checked.request('x', {}, { timeot: 5 } as object), invalid('Unknown option "timeot" in request() options. Known options: sender, timeout, abortSignal.'))
  await t.rejects(checked.request('x', {}, null as unknown as object), invalid('request() options must be an object, got null.'))
  t.throws(() => checked.disconnect('x', noop, { gruop: 'a' } as object), invalid('Unknown option "gruop" in disconnect() options. Known options: sender, group, concurrency, durable.'))
  // The options given to connect() do for disconnect() too.
  t.equal(checked.disconnect('x', noop, { group: 'g', concurrency: 2, durable: false }), 0)
  t.throws(() => checked.emits('x', { sendr: 'a' } as object), invalid('Unknown option "sendr" in emits() options. Known options: sender.'))
  // An abortSignal that is not one fails at the call, not later inside the wait.
  await t.rejects(checked.waitFor('x', { abortSignal: 'nope' as unknown as AbortSignal }), invalid('The abortSignal option of waitFor() must be an AbortSignal (from an AbortController, or AbortSignal.timeout()), got "nope".'))
  await t.rejects(checked.request('x', {}, { abortSignal: {} as AbortSignal }), invalid('The abortSignal option of request() must be an AbortSignal (from an AbortController, or AbortSignal.timeout()), got object.'))
  t.notOk(checked.isStarted(), 'no refused call started the node')
  await t.rejects(checked.deadLetters('x', 'g', { max: 5 } as object), invalid('Unknown option "max" in deadLetters() options. Known options: count.'))
  // Known options, an undefined one among them, still work.
  await t.rejects(checked.waitFor('x', { sender: undefined, timeout: 1000, abortSignal: AbortSignal.abort() }), { code: 'ERR_PYVENT_ABORTED' })
})

t.test('one report per failure, however many listeners wait on it', async (t) => {
  const port = ports.next()
  const lonely = node(t, port, { server: false })
  const errors: Error[] = []
  const first = new Promise<void>((resolve) =>
    lonely.on('error', (error) => {
      errors.push(error)
      resolve()
    })
  )
  for (let i = 0; i < 20; i++) lonely.connect(`signal-${i}`, () => undefined)
  await deadline(first, READY_TIMEOUT + SLACK, 'the report')
  // Every other listener's share of the same failure would be reported in this same turn.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(errors.length, 1, 'one error event for 20 listeners')
  t.match(errors[0]!.message, /No relay runs there, and this node may not host one \(server: false\)/, 'the hint names the real cause')
})

t.test('the hint says what is wrong: a host name that does not resolve', async (t) => {
  const unresolvable = new Node({ host: 'no-such-host.invalid', port: ports.next(), readyTimeout: READY_TIMEOUT })
  t.teardown(() => unresolvable.stop())
  const error = await unresolvable.ready().catch((caught: unknown) => caught)
  t.ok(error instanceof RelayUnreachableError)
  t.match((error as Error).message, /The host name "no-such-host\.invalid" does not resolve/)
  t.notMatch((error as Error).message, /another program/i, 'not blamed on a program holding the port')
})

t.test('the hint says what is wrong: an address that is not this machine\'s', async (t) => {
  // TEST-NET-1 (RFC 5737): never an address of this machine, and nothing answers there.
  const remote = new Node({ host: '192.0.2.1', port: ports.next(), readyTimeout: READY_TIMEOUT })
  t.teardown(() => remote.stop())
  const error = await remote.ready().catch((caught: unknown) => caught)
  t.ok(error instanceof RelayUnreachableError)
  t.match((error as Error).message, /192\.0\.2\.1 is not an address of this machine, so this node cannot host one/)
})
