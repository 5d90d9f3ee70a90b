// Redis failing under pyvent: the server restarted mid-stream (append-only file
// on, so it comes back with its data), connections that close or are refused at
// the worst moment, Redis refusing a batch, and a subscriber too slow for
// Redis's output-buffer limit. Clients reconnect by themselves; durable groups
// lose nothing; what plain pub/sub lost, and what Redis refused, is reported,
// never silent.
import net from 'node:net'
import t, { Test } from 'tap'
import { createClient, SocketClosedUnexpectedlyError } from 'redis'
import { Node } from '../dist/index.js'
import { Link } from '../dist/redis/link.js'
import type { RedisClient } from '../dist/redis/load.js'
import { fixture, portBlock, spawnNode, filled, pushedUntil } from './helpers'
import { RedisServer, requireRedis, startRedis } from './redis-server'

const ports = portBlock(__filename)
const port = ports.next()
const proxyPort = ports.next()
const url = `redis://127.0.0.1:${port}`

/**
 * A TCP proxy to the test's redis-server on `proxyPort`, for connections this
 * test makes afterwards. `close()` stops it accepting (its listening socket goes
 * at once; open connections stay), so reconnections are refused, until the first
 * refused one opens it again. `commands()` is the client socket of the first
 * connection through it that named itself `pyvent-cmd-...` (CLIENT SETNAME).
 */
async function flakyProxy(t: Test): Promise<{ url: string; close(): void; commands(): net.Socket; refused(): number }> {
  const pairs = new Set<net.Socket>()
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, '127.0.0.1')
    for (const [a, b] of [[inbound, outbound], [outbound, inbound]] as const) {
      pairs.add(a)
      a.pipe(b)
      a.on('error', () => b.destroy())
      a.on('close', () => (pairs.delete(a), b.destroy()))
    }
  })
  let accepting = false
  const open = (): void => {
    if (accepting) return
    accepting = true
    server.listen(proxyPort, '127.0.0.1')
  }
  open()
  await new Promise((resolve) => server.once('listening', resolve))
  t.teardown(() => {
    server.close()
    for (const socket of pairs) socket.destroy()
  })
  let refused = 0
  let commands: net.Socket | undefined
  const connect = net.createConnection
  t.capture(net, 'createConnection', function (this: unknown, ...args: Parameters<typeof net.createConnection>) {
    const socket = connect.apply(this, args)
    if ((args[0] as unknown as net.TcpNetConnectOpts).port !== proxyPort) return socket
    const write = socket.write
    socket.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]): boolean {
      if (commands === undefined && String(chunk).includes('pyvent-cmd-')) commands = socket
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
    } as typeof socket.write
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNREFUSED') return
      refused++
      open()
    })
    return socket
  } as typeof net.createConnection)
  return {
    url: `redis://127.0.0.1:${proxyPort}`,
    close: () => {
      accepting = false
      server.close()
    },
    commands: () => {
      if (commands === undefined) throw new Error('no command connection was made through the proxy')
      return commands
    },
    refused: () => refused
  }
}

if (requireRedis(t, 'the Redis fault tests')) {
  let server: RedisServer
  t.before(async () => {
    server = await startRedis(t, port, { appendonly: true })
  })

  t.test('redis-server restarted mid-stream: clients reconnect, the durable group loses nothing, plain losses are reported', async (t) => {
    const listener = new Node({ url })
    const member = new Node({ url })
    const sender = new Node({ url })
    t.teardown(async () => {
      await Promise.all([listener.stop(), member.stop(), sender.stop()])
    })
    const lost: Error[] = []
    const senderErrors: Error[] = []
    listener.on('error', (error) => lost.push(error))
    member.on('error', () => undefined)
    sender.on('error', (error) => void senderErrors.push(error))
    const plain: number[] = []
    const durable = new Set<number>()
    const handled: number[] = []
    const pings: number[] = []
    listener.connect('feed', ({ i }: { i: number }) => void plain.push(i))
    listener.connect('after', ({ n }: { n: number }) => void pings.push(n))
    // An entry Redis handed to the member just as the server went down is in the member's
    // pending list but never reached it: claimAfter is how long it waits there before it is
    // handed out again (the default, 30 s, is as long as this test waits).
    member.connect('feed', ({ i }: { i: number }) => void (durable.add(i), handled.push(i)), { group: 'store', durable: { claimAfter: 500 } })
    await Promise.all([listener.ready(), member.ready()])
    for (let i = 0; i < 50; i++) await sender.send('feed', { i })
    await sender.flush()
    await filled(plain, 50, 'the events before the restart')

    await server.stop()
    // Sent while the server is down: one batch, queued, and sent once the server is back.
    for (let i = 50; i < 100; i++) await sender.send('feed', { i })
    await server.start()
    // Sent once the server is back, before the nodes have noticed.
    for (let i = 100; i < 150; i++) await sender.send('feed', { i })
    // The listener is back once an event sent now reaches it.
    for (let n = 0; pings.length === 0; n++) {
      await sender.send('after', { n })
      await sender.flush()
      await new Promise((resolve) => setImmediate(resolve))
      if (n > 100_000) throw new Error('the listener never came back')
    }
    for (let i = 150; i < 160; i++) await sender.send('feed', { i })
    await sender.flush()
    const missing = (): number[] => [...Array(160).keys()].filter((i) => !durable.has(i))
    const counts = (): string =>
      `(plain listener: ${plain.length} events, last ${String(plain.at(-1))}; durable group: ${durable.size} of 160, missing ${missing().join(',')}; ` +
      `sender errors: ${senderErrors.map((error) => error.message).join(' | ')})`
    const explain = (error: Error): never => {
      throw new Error(`${error.message} ${counts()}`)
    }
    await pushedUntil(plain, () => plain.includes(159), 'the plain listener to get the last event', 30_000).catch(explain)
    await pushedUntil(handled, () => durable.size >= 160, 'the durable group to handle all 160 events', 30_000).catch(explain)
    t.same(missing(), [], 'the durable group lost nothing: neither what was sent while the server was down nor right after')
    const stats = await listener.stats()
    t.ok(stats.disconnects >= 1, `the break is counted (${stats.disconnects})`)
    t.match(lost[0], { code: 'ERR_PYVENT_CONNECTION_LOST', engine: 'redis' }, 'and reported through the error event')
    t.equal(new Set(plain).size + stats.gaps, 160, `what plain pub/sub lost is counted in gaps (${stats.gaps} lost, ${plain.length} arrived)`)
    t.equal((await sender.stats()).unsent, 0, 'the sender gave up on nothing')
  })

  t.test('a command sent in the tick its connection closes gets its own reply or an error, never the next connection\'s', async (t) => {
    // The same interleaving, on one link: node-redis writes the PING one turn later, into
    // the socket closed meanwhile, after its break was handled; reconnected, the client
    // would match the PING to the handshake's first reply.
    const proxy = await flakyProxy(t)
    const link = new Link(createClient as unknown as (options: object) => RedisClient, { url: proxy.url, name: 'pyvent-cmd-link-test' }, { wanted: () => true, lost: () => undefined, ready: () => undefined })
    t.teardown(() => link.close(false))
    await link.whenReady()
    t.equal(await link.client.sendCommand(['PING']), 'PONG')
    const broken = proxy.commands()
    proxy.close()
    const reply = await new Promise<unknown>((resolve) =>
      setImmediate(() => {
        // In a check phase, as a batch is sealed: node-redis's write comes in the next turn's.
        link.client.sendCommand(['PING']).then(resolve, resolve)
        broken.destroy()
      })
    )
    t.type(reply, SocketClosedUnexpectedlyError, `rejected (its sender sends it again), not answered with another command's reply (${String(reply)})`)
    await link.whenReady()
    t.ok(proxy.refused() >= 1, `the first reconnection was refused (${proxy.refused()})`)
    t.equal(await link.client.sendCommand(['PING']), 'PONG', 'a new connection, in step')
  })

  t.test('a batch sent in the tick its connection closes, with the server unreachable for a moment, reaches the durable group', async (t) => {
    // The interleaving that lost a batch sent during a restart, driven step by step: the
    // batch goes to a client that is still ready; in the same event-loop turn its socket
    // closes; the first reconnection is refused; the next one succeeds. node-redis writes
    // commands one turn after they are sent, so the batch went into the dead socket after
    // the break had been handled, waited there for a reply, and got the one meant for the
    // new connection's first handshake command ("OK"): nothing ran it, and nothing said so.
    const proxy = await flakyProxy(t)
    const member = new Node({ url })
    const sender = new Node({ url: proxy.url })
    t.teardown(async () => {
      await Promise.all([member.stop(), sender.stop()])
    })
    const senderErrors: Error[] = []
    member.on('error', () => undefined)
    sender.on('error', (error) => void senderErrors.push(error))
    const got = new Set<number>()
    const handled: number[] = []
    member.connect('ghost', ({ i }: { i: number }) => void (got.add(i), handled.push(i)), { group: 'keep', durable: { claimAfter: 500 } })
    await Promise.all([member.ready(), sender.ready()])
    await sender.send('ghost', { i: 0 })
    await sender.flush()
    const broken = proxy.commands()

    proxy.close()
    const sends: Promise<void>[] = []
    for (let i = 1; i <= 50; i++) sends.push(sender.send('ghost', { i }))
    // The batch is sealed (and handed to node-redis) in this turn's check phase, by an
    // immediate queued before this one; its socket closes right after, in the same turn.
    setImmediate(() => broken.destroy())
    await Promise.all(sends)
    await sender.flush()
    t.ok(proxy.refused() >= 1, `the first reconnection was refused (${proxy.refused()})`)
    const stored = Number(server.cli('XLEN', 'pyvent:s:ghost'))
    t.equal(stored, 51, 'the batch is in the stream')
    if (stored === 51) await pushedUntil(handled, () => got.size >= 51, 'the durable group to handle all 51 events')
    t.same([...got].sort((a, b) => a - b), [...Array(51).keys()], 'the durable group got every event')
    t.equal((await sender.stats()).unsent, 0, 'the sender gave up on nothing')
    t.match(senderErrors, [{ code: 'ERR_PYVENT_CONNECTION_LOST' }], `the sender reported the break, and nothing else (${senderErrors.map((e) => e.message).join(' | ')})`)
  })

  t.test('a listener whose first connection attempt is refused receives events once connected', async (t) => {
    // node-redis takes a client whose connection attempt failed out of pub/sub mode while
    // its SUBSCRIBE waits in the queue; the first message it then gets breaks its reply parser.
    const proxy = await flakyProxy(t)
    proxy.close()
    const listener = new Node({ url: proxy.url })
    const sender = new Node({ url })
    t.teardown(async () => {
      await Promise.all([listener.stop(), sender.stop()])
    })
    const errors: Error[] = []
    listener.on('error', (error) => void errors.push(error))
    const got: number[] = []
    listener.connect('late', (n: number) => void got.push(n))
    await listener.ready()
    t.ok(proxy.refused() >= 1, `its first connection attempt was refused (${proxy.refused()})`)
    await sender.send('late', 1)
    await filled(got, 1, 'the event to arrive', 10_000).catch((error: Error) => {
      throw new Error(`${error.message} (listener errors: ${errors.map((e) => e.message).join(' | ')})`)
    })
    t.same(got, [1])
  })

  t.test('a batch Redis refuses (out of memory) is reported through the error event and counted in unsent', async (t) => {
    const member = new Node({ url })
    const sender = new Node({ url })
    t.teardown(async () => {
      server.cli('CONFIG', 'SET', 'maxmemory', '0')
      await Promise.all([member.stop(), sender.stop()])
    })
    const errors: Error[] = []
    member.on('error', () => undefined)
    sender.on('error', (error) => void errors.push(error))
    member.connect('full', () => undefined, { group: 'keep', durable: {} })
    await Promise.all([member.ready(), sender.ready()])
    server.cli('CONFIG', 'SET', 'maxmemory', '1')
    for (let i = 0; i < 5; i++) void sender.send('full', { i })
    await sender.flush()
    await filled(errors, 1, 'the refusal to be reported')
    t.match(errors, [{ name: 'SendFailedError', code: 'ERR_PYVENT_SEND_FAILED', engine: 'redis', count: 5, message: /5 events of "full".*OOM/ }])
    t.equal((await sender.stats()).unsent, 5, 'counted in stats().unsent')
  })

  t.test('a node idle through a server restart requests and listens again afterwards', async (t) => {
    const responder = new Node({ url })
    const idle = new Node({ url })
    t.teardown(async () => {
      await Promise.all([responder.stop(), idle.stop()])
    })
    responder.on('error', () => undefined)
    idle.on('error', () => undefined)
    responder.respond('double', (n: number) => n * 2)
    await responder.ready()
    t.equal(await idle.request('double', 2), 4)
    await server.stop()
    await server.start()
    // The responder listens, so it reconnects at once; the idle node only when used again.
    await responder.ready()
    t.equal(await idle.request('double', 21, { timeout: 10_000 }), 42, 'the reply reaches a requester whose connections were made again')
    const got: number[] = []
    idle.connect('after-restart', (n: number) => void got.push(n))
    await idle.ready()
    await responder.send('after-restart', 7)
    await filled(got, 1, 'an event after the restart', 10_000)
    t.same(got, [7])
  })

  t.test('a slow plain subscriber cut off by the output-buffer limit is reported, not silent', async (t) => {
    server.cli('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 64kb 0 0')
    const child = spawnNode(t, fixture('slow-listener.js'), ['flood'], { PYVENT_URL: url })
    await child.line('READY')
    const sender = new Node({ url })
    t.teardown(() => sender.stop())
    const pad = 'x'.repeat(1000)
    // Far more than the kernel's socket buffers hold, while the listener reads nothing.
    for (let i = 0; i < 20000; i++) await sender.send('flood', { i, pad })
    await sender.flush()
    child.process.stdin!.write('go\n')
    await child.line('UNBLOCKED')
    t.equal(await child.line(/^LOST/), 'LOST ERR_PYVENT_CONNECTION_LOST', 'the listener hears it was cut off')
    // Once it is back, a later event shows how many it missed.
    let stats: { disconnects: number; gaps: number } | undefined
    for (let n = 0; stats === undefined; n++) {
      await sender.send('flood', { i: 1000 + n })
      await sender.send('flood-done', {})
      await sender.flush()
      const line = await child.line(/^STATS/, 500).catch(() => undefined)
      if (line !== undefined) stats = JSON.parse(line.slice(6)) as { disconnects: number; gaps: number }
      if (n > 40) throw new Error('the listener never came back')
    }
    t.ok(stats.disconnects >= 1, `disconnects counted (${stats.disconnects})`)
    t.ok(stats.gaps > 0, `the events Redis dropped are counted as gaps (${stats.gaps})`)
  })
}
