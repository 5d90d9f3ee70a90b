// The pyvent command line: start() in-process with captured streams for
// arguments, help and most behaviour; the real bin (dist/cli.js) in child
// processes for serve, listen, stdin, shell loops and signals.
import { exec } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t, { Test } from 'tap'
// The built files: a node hosts its relay in a worker thread that runs dist/relay-worker.js.
import { CliIO, start } from '../dist/cli'
import { maskPassword } from '../dist/cli-args'
import { Node } from '../dist/node'
import { Child, deadline, portBlock, spawnNode, spawnProcess } from './helpers'

const ports = portBlock(__filename)
const BIN = join(__dirname, '..', 'dist', 'cli.js')
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const COMMANDS = ['send', 'listen', 'wait', 'request', 'serve']

/** Text written to a stream, with ways to wait for lines. */
interface Capture {
  stream: PassThrough
  text(): string
  lines(): string[]
  /** Resolves with the first line matching `match`, already written or to come. */
  line(match: RegExp): Promise<string>
  /** Resolves with the lines once there are at least `count`. */
  count(count: number): Promise<string[]>
}

function capture(stream = new PassThrough()): Capture {
  let text = ''
  const waiters = new Set<() => void>()
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8')
    for (const wake of waiters) wake()
  })
  const lines = (): string[] => text.split('\n').filter((line) => line !== '')
  const until = <T>(what: string, done: () => T | undefined): Promise<T> => {
    const found = new Promise<T>((resolve) => {
      const check = (): void => {
        const result = done()
        if (result === undefined) return
        waiters.delete(check)
        resolve(result)
      }
      waiters.add(check)
      check()
    })
    return deadline(found, 10_000, what).catch((error: Error) => {
      throw new Error(`${error.message}; written so far: ${JSON.stringify(text)}`)
    })
  }
  return {
    stream,
    text: () => text,
    lines,
    line: (match) => until(`a line matching ${String(match)}`, () => lines().find((line) => match.test(line))),
    count: (count) => until(`${count} lines`, () => (lines().length >= count ? lines() : undefined))
  }
}

/** A stdin that has data but never ends, like an inherited pipe: reading it to its end would hang. */
function neverEnds(): CliIO['stdin'] {
  const stdin = new PassThrough()
  stdin.write('{"read":"by mistake"}\n')
  return stdin
}

/** `text` quoted for sh. */
function sh(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`
}

/** Runs start() with captured output, an empty stdin and an empty environment; stopped in teardown. */
function run(t: Test, argv: string[], io: Partial<CliIO> = {}) {
  const out = capture()
  const err = capture()
  const controller = new AbortController()
  const code = start(argv, {
    stdout: out.stream,
    stderr: err.stream,
    stdin: Readable.from([]),
    env: {},
    abortSignal: controller.signal,
    ...io
  })
  t.teardown(async () => {
    controller.abort()
    await code
  })
  /** Resolves with the status line matching `match`; rejects at once if the command ends first. */
  const status = (match: RegExp): Promise<string> =>
    Promise.race([
      err.line(match),
      code.then((exit) => {
        throw new Error(`pyvent ${argv.join(' ')} exited with ${exit} before ${String(match)}: ${err.text()}`)
      })
    ])
  return { code, out, err, status, stop: () => controller.abort() }
}

/** Waits for a line on a child's stderr (helpers' Child reads stdout lines only). */
function stderrLine(child: Child, match: RegExp): Promise<string> {
  let text = ''
  const found = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8')
      const hit = text.split('\n').find((line) => match.test(line))
      if (hit === undefined) return
      child.process.stderr?.off('data', onData)
      resolve(hit)
    }
    child.process.stderr?.on('data', onData)
    child.process.once('exit', (code) => reject(new Error(`exited (${String(code)}) before ${String(match)} on stderr: ${text}`)))
  })
  return deadline(found, 20_000, `${String(match)} on stderr`).catch((error: Error) => {
    throw new Error(`${error.message}; stderr so far: ${JSON.stringify(text)}`)
  })
}

t.test('--help on every command, help <command> and --version print to stdout and exit 0', async (t) => {
  const general = run(t, ['--help'])
  t.equal(await general.code, 0)
  t.match(general.out.text(), /^Usage: pyvent <command> \[options\]\n/)
  for (const command of COMMANDS) t.match(general.out.text(), new RegExp(`\\n  ${command} `), `lists ${command}`)
  t.match(general.out.text(), /\n  --url <url> +Redis or NATS/, 'documents --url')
  t.equal(general.err.text(), '')

  for (const argv of [...COMMANDS.map((command) => [command, '--help']), ...COMMANDS.map((command) => ['help', command])]) {
    const { code, out, err } = run(t, argv)
    t.equal(await code, 0, argv.join(' '))
    t.match(out.text(), new RegExp(`^Usage: pyvent ${argv[0] === 'help' ? argv[1] : argv[0]} `), argv.join(' '))
    t.match(out.text(), /--port <port> +the relay's port/, `${argv.join(' ')} documents --port`)
    t.match(out.text(), /--url <url> +Redis or NATS at this URL instead of the relay \(default: \$PYVENT_URL\)/, `${argv.join(' ')} documents --url`)
    t.equal(err.text(), '')
  }
  // Help wins over missing arguments, and -h is --help.
  const short = run(t, ['send', '-h'])
  t.equal(await short.code, 0)
  t.match(short.out.text(), /^Usage: pyvent send <signal> \[json \| -\]/)
  const bare = run(t, ['help'])
  t.equal(await bare.code, 0)
  t.equal(bare.out.text(), general.out.text())

  const version = run(t, ['--version'])
  t.equal(await version.code, 0)
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }
  t.equal(version.out.text(), `${manifest.version}\n`)
})

/** What resolveOptions says of a URL of no known engine. */
const URL_REFUSED = /^pyvent: Option "url" \(or PYVENT_URL\) must start with redis:\/\/, rediss:\/\/, nats:\/\/ or tls:\/\/, got "foo:\/\/x"\. Leave it out to use the ZeroMQ relay\.$/

t.test('bad arguments and bad payloads: one line on stderr, a usage hint, exit code 2', async (t) => {
  const port = String(ports.next())
  const cases: { argv: string[]; message: RegExp; usage: RegExp; io?: Partial<CliIO> }[] = [
    { argv: [], message: /missing the command/, usage: /^Usage: pyvent <command>/ },
    { argv: ['bogus'], message: /unknown command "bogus"/, usage: /^Usage: pyvent <command>/ },
    { argv: ['help', 'bogus'], message: /no help for "bogus"/, usage: /^Usage: pyvent <command>/ },
    { argv: ['send'], message: /missing the <signal> argument/, usage: /^Usage: pyvent send <signal>/ },
    { argv: ['send', 'x', '--all'], message: /"pyvent send" has no option --all/, usage: /^Usage: pyvent send/ },
    { argv: ['send', '--version'], message: /"pyvent send" has no option --version/, usage: /^Usage: pyvent send/ },
    { argv: ['listen', '--bogus'], message: /Unknown option '--bogus'/, usage: /^Usage: pyvent listen/ },
    { argv: ['wait', 'x', '--port'], message: /Option '--port <value>' argument missing/, usage: /^Usage: pyvent wait/ },
    { argv: ['wait', 'x', '--timeout', 'soon'], message: /--timeout must be a whole number from 0 to 2147483647, got "soon"/, usage: /^Usage: pyvent wait/ },
    { argv: ['wait', 'x', '--timeout', '3000000000'], message: /--timeout must be a whole number/, usage: /^Usage: pyvent wait/ },
    { argv: ['wait', 'x', 'y'], message: /unexpected argument "y"$/, usage: /^Usage: pyvent wait/ },
    { argv: ['serve', '--port', '0'], message: /--port must be a whole number from 1 to 65534, got "0"/, usage: /^Usage: pyvent serve/ },
    { argv: ['serve', '--host', 'a b'], message: /Option "host" must be a host name/, usage: /^Usage: pyvent serve/ },
    { argv: ['send', 'x', '{"food":'], message: /the payload argument is not valid JSON/, usage: /^Usage: pyvent send/ },
    { argv: ['request', 'x', '{"food":', '1}'], message: /unexpected argument "1}" \(quote the JSON payload/, usage: /^Usage: pyvent request/ },
    { argv: ['send', '$x', '{}'], message: /The signal "\$x" starts with "\$", which is reserved/, usage: /^Usage: pyvent send/ },
    { argv: ['listen', '--sender', ''], message: /The sender filter must not be empty/, usage: /^Usage: pyvent listen/ },
    { argv: ['listen', 'x', '--all'], message: /--all listens to every signal from every sender/, usage: /^Usage: pyvent listen/ },
    { argv: ['listen', '--all', '--sender', 'a'], message: /--all listens to every signal from every sender/, usage: /^Usage: pyvent listen/ },
    {
      argv: ['send', 'x', '{}'],
      io: { env: { PYVENT_PORT: 'fifty' } },
      message: /PYVENT_PORT must be a port number from 1 to 65534, got "fifty"/,
      usage: /^Usage: pyvent send/
    },
    // The TypeError of resolveOptions, for --url and for PYVENT_URL in the command's own environment.
    { argv: ['send', 'x', '--url', 'foo://x'], message: URL_REFUSED, usage: /^Usage: pyvent send/ },
    { argv: ['listen', 'x'], io: { env: { PYVENT_URL: 'foo://x' } }, message: URL_REFUSED, usage: /^Usage: pyvent listen/ },
    { argv: ['serve', '--url', 'redis://localhost:6379'], message: /serve hosts the ZeroMQ relay, which a URL/, usage: /^Usage: pyvent serve/ },
    { argv: ['wait', 'x', '--url', 'nats://localhost:4222', '--port', port], message: /--port and --host place the ZeroMQ relay/, usage: /^Usage: pyvent wait/ },
    {
      argv: ['send', 'x', '-', '--port', port],
      io: { stdin: Readable.from(['{"food":', ' oops}']) },
      message: /the payload on standard input is not valid JSON/,
      usage: /^Usage: pyvent send/
    },
    // Valid JSON that pyvent refuses to send: reported by the library, still bad input.
    { argv: ['send', 'x', '1e999', '--port', port], message: /Cannot send Infinity/, usage: /^Usage: pyvent send/ }
  ]
  for (const { argv, message, usage, io } of cases) {
    const { code, out, err } = run(t, argv, io)
    const name = `pyvent ${argv.join(' ')}`
    t.equal(await code, 2, name)
    t.equal(out.text(), '', `${name}: nothing on stdout`)
    const [first, second, third, ...rest] = err.text().split('\n')
    t.match(first, /^pyvent: /, name)
    t.match(first, message, name)
    t.match(second, usage, `${name}: usage`)
    t.match(third, /^Run "pyvent (\w+ )?--help" for more\.$/, `${name}: help hint`)
    t.same(rest, [''], `${name}: three lines`)
  }
})

t.test('status lines show a URL with its password masked', async (t) => {
  t.equal(maskPassword('redis://user:secret@cache:6379/2'), 'redis://user:***@cache:6379/2')
  t.equal(maskPassword('rediss://:secret@cache:6380'), 'rediss://:***@cache:6380')
  t.equal(maskPassword('nats://token@a:4222,nats://u:p@b:4222'), 'nats://***@a:4222,nats://u:***@b:4222')
  t.equal(maskPassword('nats://a:4222,nats://b:4222'), 'nats://a:4222,nats://b:4222')
})

t.test('send and listen: a round trip through start()', async (t) => {
  const port = String(ports.next())
  const listener = run(t, ['listen', 'order-food', '--port', port])
  t.match(await listener.status(/^pyvent: listening/), /^pyvent: listening on 127\.0\.0\.1:\d+ to "order-food" from sender "pyvent"; this process hosts the relay$/)

  const before = Date.now()
  const argument = run(t, ['send', 'order-food', '{"food":"sushi"}', '--port', port])
  t.equal(await argument.code, 0)
  t.equal(argument.out.text() + argument.err.text(), '', 'send prints nothing')
  const stdinStrings = run(t, ['send', 'order-food', '-', '--port', port], { stdin: Readable.from(['{"food":', '"ramen"}']) })
  t.equal(await stdinStrings.code, 0)
  const stdinBytes = new PassThrough()
  stdinBytes.end('{"food":"udon"}\n')
  t.equal(await run(t, ['send', 'order-food', '-', '--port', port], { stdin: stdinBytes }).code, 0)
  t.equal(await run(t, ['send', 'order-food', '--port', port], { stdin: neverEnds() }).code, 0, 'without -, stdin is not read')
  t.equal(await run(t, ['send', 'order-food', '-', '--port', port]).code, 0, '- with an empty stdin')

  const got = (await listener.out.count(5)).map((line) => JSON.parse(line) as Record<string, unknown>)
  t.same(
    got.map((event) => event.payload),
    [{ food: 'sushi' }, { food: 'ramen' }, { food: 'udon' }, {}, {}]
  )
  const first = got[0] as Record<string, unknown>
  t.same(Object.keys(first), ['signal', 'sender', 'id', 'timestamp', 'payload'])
  t.equal(first.signal, 'order-food')
  t.equal(first.sender, 'pyvent')
  t.match(first.id, UUID)
  t.ok((first.timestamp as number) >= before && (first.timestamp as number) <= Date.now())

  listener.stop()
  t.equal(await listener.code, 0, 'listen exits 0 when stopped')
  t.equal(listener.out.lines().length, 5, 'nothing else on stdout')
})

t.test('listen --sender filters by sender; listen --all hears everything and answers no request', async (t) => {
  const port = String(ports.next())
  const orders = run(t, ['listen', '--sender', 'orders', '--port', port])
  t.match(await orders.status(/^pyvent: listening/), / to every signal from sender "orders"; this process hosts the relay$/)
  const monitor = run(t, ['listen', '--all', '--port', port])
  t.match(await monitor.status(/^pyvent: listening/), / to every signal from every sender$/, 'a client of the first listener')

  // Each command ends with a round trip through the relay, so the events arrive in this order.
  t.equal(await run(t, ['send', 'order-food', '{"n":1}', '--port', port]).code, 0)
  t.equal(await run(t, ['send', 'order-food', '{"n":2}', '--sender', 'orders.eu', '--port', port]).code, 0)
  const request = run(t, ['request', 'add', '{"a":1}', '--timeout', '300', '--port', port])
  t.equal(await request.code, 1, 'the monitor does not answer the request')
  t.match(request.err.text(), /^pyvent: No responder is registered for "add"/, 'nobody responds: refused at once, not timed out')
  t.equal(request.out.text(), '')
  // A marker after the request: had the monitor seen the request, it would come before this.
  t.equal(await run(t, ['send', 'marker', '{"n":3}', '--port', port]).code, 0)

  const seen = (await monitor.out.count(3)).map((line) => JSON.parse(line) as { signal: string; sender: string; payload: unknown })
  t.same(
    seen.map(({ signal, sender, payload }) => [signal, sender, payload]),
    [
      ['order-food', 'pyvent', { n: 1 }],
      ['order-food', 'orders.eu', { n: 2 }],
      ['marker', 'pyvent', { n: 3 }]
    ],
    'requests go to responders only: the monitor never sees them'
  )
  // The event from "pyvent" reached this listener first, and was filtered out.
  const filtered = (await orders.out.count(1)).map((line) => JSON.parse(line) as { sender: string; payload: unknown })
  t.same(
    filtered.map(({ sender, payload }) => [sender, payload]),
    [['orders.eu', { n: 2 }]],
    'only the event from below "orders"'
  )
})

t.test('wait prints the first matching event and exits 0', async (t) => {
  const port = ports.next()
  // The library node hosts the relay, so it outlives the wait's node (and stops without waiting for a relay).
  const node = new Node({ port })
  t.teardown(() => node.stop())
  t.ok(await node.startServer())
  const waiting = run(t, ['wait', 'build-done', '--timeout', '10000', '--port', String(port)])
  t.match(await waiting.status(/^pyvent: waiting/), /^pyvent: waiting on 127\.0\.0\.1:\d+ for "build-done" from sender "pyvent"$/)
  await node.send('build-done', { ok: true })
  await node.send('build-done', { ok: false })
  t.equal(await waiting.code, 0)
  const lines = waiting.out.lines()
  t.equal(lines.length, 1)
  t.match(JSON.parse(lines[0] as string), { signal: 'build-done', sender: 'pyvent', payload: { ok: true } })
})

t.test('wait exits 1 with a message on timeout', async (t) => {
  const waiting = run(t, ['wait', 'never', '--timeout', '100', '--sender', 'ci', '--port', String(ports.next())])
  t.equal(await waiting.code, 1)
  t.equal(waiting.out.text(), '')
  // The wait may time out before the relay this command hosts is up: then it says the relay had not confirmed it.
  t.match(waiting.err.text(), /^(pyvent: waiting on .* from sender "ci"\npyvent: No event on "never" within 100 ms\.|pyvent: No event on "never" within 100 ms, and the relay \(or engine server\) had not confirmed the wait yet: .*)\n$/)
})

t.test('request prints the reply of a library responder; exit 1 for a remote error or no responder', async (t) => {
  const port = ports.next()
  const responder = new Node({ port })
  t.teardown(() => responder.stop())
  responder.respond('add', (payload) => {
    const { a, b } = payload as { a: number; b: number }
    return { sum: a + b }
  })
  responder.respond('fail', () => {
    throw new RangeError('no such dish')
  })
  await responder.ready()

  const added = run(t, ['request', 'add', '{"a":1,"b":2}', '--port', String(port)])
  t.equal(await added.code, 0)
  t.equal(added.out.text(), '{"sum":3}\n')
  t.equal(added.err.text(), '')

  const fromStdin = run(t, ['request', 'add', '-', '--port', String(port)], { stdin: Readable.from(['{"a":2,"b":3}']) })
  t.equal(await fromStdin.code, 0)
  t.equal(fromStdin.out.text(), '{"sum":5}\n')
  const notRead = run(t, ['request', 'add', '{"a":3,"b":4}', '--port', String(port)], { stdin: neverEnds() })
  t.equal(await notRead.code, 0, 'with a payload argument, stdin is not read')
  t.equal(notRead.out.text(), '{"sum":7}\n')

  const failed = run(t, ['request', 'fail', '--port', String(port)])
  t.equal(await failed.code, 1)
  t.equal(failed.out.text(), '')
  t.equal(failed.err.text(), 'pyvent: the responder failed with RangeError: no such dish\n')
})

t.test('serve: the real bin hosts a relay that library nodes use, and exits 0 on SIGINT', async (t) => {
  const port = ports.next()
  const relay = spawnNode(t, BIN, ['serve', '--port', String(port)])
  t.equal(
    await stderrLine(relay, /^pyvent: relay running/),
    `pyvent: relay running on 127.0.0.1:${port} (ports ${port} and ${port + 1}); stop it with Ctrl-C`
  )

  const client = new Node({ port, server: false })
  t.teardown(() => client.stop())
  const ping = client.waitFor('ping', { timeout: 10_000 })
  await client.ready()
  t.notOk(client.isServer(), 'the library node is a client of the served relay')
  await client.send('ping', { n: 1 })
  t.same((await ping).payload, { n: 1 })

  // A second relay on the same port is refused.
  const second = run(t, ['serve', '--port', String(port)])
  t.equal(await second.code, 1)
  t.equal(
    second.err.text(),
    `pyvent: cannot serve on 127.0.0.1:${port}: port ${port} or ${port + 1} is in use (by a running relay or another program); choose another port with --port or PYVENT_PORT.\n`
  )

  await client.stop()
  relay.process.kill('SIGINT')
  t.equal(await relay.exit(), 0)
  t.same(relay.lines, [], 'serve prints nothing on stdout')
})

t.test('serve in-process stops at once when its abort signal has already aborted', async (t) => {
  const port = ports.next()
  const serving = run(t, ['serve', '--port', String(port)], { abortSignal: AbortSignal.abort() })
  t.equal(await serving.code, 0)
  t.match(serving.err.text(), /^pyvent: relay running on 127\.0\.0\.1:\d+ /)
  // The ports are free again.
  const node = new Node({ port })
  t.teardown(() => node.stop())
  t.ok(await node.startServer())
})

t.test('the real bin: listen in a child gets what send - in a child reads from stdin; SIGTERM exits 0', async (t) => {
  const port = String(ports.next())
  const listener = spawnNode(t, BIN, ['listen', 'order-food', '--port', port])
  await stderrLine(listener, /^pyvent: listening on/)

  const sender = spawnNode(t, BIN, ['send', 'order-food', '-', '--port', port])
  sender.process.stdin?.end('{"food":"sushi"}\n')
  t.equal(await sender.exit(), 0)
  t.same(sender.lines, [])

  t.match(JSON.parse(await listener.line(/"signal":"order-food"/)), { sender: 'pyvent', payload: { food: 'sushi' } })
  listener.process.kill('SIGTERM')
  t.equal(await listener.exit(), 0)
  t.equal(listener.lines.length, 1, 'one JSON line on stdout, nothing else')
})

t.test('the real bin under exec(): send without a payload exits although its stdin stays open', async (t) => {
  const port = String(ports.next())
  const listener = spawnNode(t, BIN, ['listen', '--port', port])
  await stderrLine(listener, /^pyvent: listening on/)

  // exec() gives the child a stdin pipe that this process never writes to nor
  // closes; 0.1.0 read it to its end whenever it was not a terminal, and hung.
  let child!: ReturnType<typeof exec>
  const finished = new Promise<{ code: number | string | undefined; stderr: string }>((resolve) => {
    child = exec(`${sh(process.execPath)} ${sh(BIN)} send no-payload --port ${port}`, (error, _stdout, stderr) =>
      resolve({ code: error === null ? 0 : (error.code ?? error.signal ?? undefined), stderr })
    )
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  t.same(await deadline(finished, 20_000, 'the exit of pyvent send with an open stdin'), { code: 0, stderr: '' })
  t.match(JSON.parse(await listener.line(/"signal":"no-payload"/)), { sender: 'pyvent', payload: {} }, 'the payload is {}')
})

t.test('a shell loop fed by a pipe sends every line: send without a payload leaves the loop its input', async (t) => {
  const port = String(ports.next())
  const listener = spawnNode(t, BIN, ['listen', '--port', port])
  await stderrLine(listener, /^pyvent: listening on/)

  // 0.1.0's first send read "b\nc\n" as its payload (not JSON: exit 2), and the loop ended.
  const script = `printf 'a\\nb\\nc\\n' | while read -r s; do "$NODE" "$BIN" send "$s" --port "$PORT" || exit; done`
  const loop = spawnProcess(t, 'bash', ['-c', script], { env: { NODE: process.execPath, BIN, PORT: port }, name: 'a while-read loop' })
  t.equal(await loop.exit(), 0, 'every send in the loop exits 0')
  // Each send ends with a round trip through the relay, so the events arrive in order.
  await listener.line(/"signal":"c"/)
  t.same(
    listener.lines.map((line) => JSON.parse(line) as { signal: string; payload: unknown }).map(({ signal, payload }) => [signal, payload]),
    [
      ['a', {}],
      ['b', {}],
      ['c', {}]
    ]
  )
})

t.test('listen stops when its output fails: quietly for a closed pipe (EPIPE), with exit 1 otherwise', async (t) => {
  for (const [code, exit, message] of [
    ['EPIPE', 0, ''],
    ['EIO', 1, 'pyvent: write EIO\n']
  ] as const) {
    const listener = run(t, ['listen', 'x', '--port', String(ports.next())])
    await listener.status(/^pyvent: listening/)
    listener.out.stream.destroy(Object.assign(new Error(`write ${code}`), { code }))
    t.equal(await listener.code, exit, code)
    t.equal(listener.err.text().replace(/^pyvent: listening.*\n/, ''), message, code)
  }
})

t.test('an output that throws is reported on stderr, and listen goes on', async (t) => {
  const port = String(ports.next())
  const out = new PassThrough()
  let calls = 0
  let wroteAgain!: () => void
  const secondWrite = new Promise<void>((resolve) => (wroteAgain = resolve))
  out.write = () => {
    if (++calls === 1) throw new Error('disk full')
    wroteAgain()
    return true
  }
  const listener = run(t, ['listen', 'x', '--port', port], { stdout: out })
  await listener.status(/^pyvent: listening/)
  t.equal(await run(t, ['send', 'x', '1', '--port', port]).code, 0)
  t.equal(await listener.err.line(/failed/), 'pyvent: A listener for "x" failed: disk full')
  t.equal(await run(t, ['send', 'x', '2', '--port', port]).code, 0)
  await deadline(secondWrite, 10_000, 'the second event written')
  listener.stop()
  t.equal(await listener.code, 0)
})
