// The pyvent command line: start() in-process with captured streams for
// arguments, help and most behaviour; the real bin (dist/cli.js) in child
// processes for serve, listen, stdin and signals.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t, { Test } from 'tap'
// The built files: a node hosts its relay in a worker thread that runs dist/relay-worker.js.
import { CliIO, start } from '../dist/cli'
import { Node } from '../dist/node'
import { Child, deadline, portBlock, spawnNode } from './helpers'

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

/** A stdin that is a terminal: never read. */
function terminal(): CliIO['stdin'] {
  return Object.assign(new PassThrough(), { isTTY: true })
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
  return deadline(found, 20_000, `${String(match)} on stderr (so far: ${JSON.stringify(text)})`)
}

t.test('--help on every command, help <command> and --version print to stdout and exit 0', async (t) => {
  const general = run(t, ['--help'])
  t.equal(await general.code, 0)
  t.match(general.out.text(), /^Usage: pyvent <command> \[options\]\n/)
  for (const command of COMMANDS) t.match(general.out.text(), new RegExp(`\\n  ${command} `), `lists ${command}`)
  t.equal(general.err.text(), '')

  for (const argv of [...COMMANDS.map((command) => [command, '--help']), ...COMMANDS.map((command) => ['help', command])]) {
    const { code, out, err } = run(t, argv)
    t.equal(await code, 0, argv.join(' '))
    t.match(out.text(), new RegExp(`^Usage: pyvent ${argv[0] === 'help' ? argv[1] : argv[0]} `), argv.join(' '))
    t.match(out.text(), /--port <port> +the relay's port/, `${argv.join(' ')} documents --port`)
    t.equal(err.text(), '')
  }
  // Help wins over missing arguments, and -h is --help.
  const short = run(t, ['send', '-h'])
  t.equal(await short.code, 0)
  t.match(short.out.text(), /^Usage: pyvent send <signal> \[json\]/)
  const bare = run(t, ['help'])
  t.equal(await bare.code, 0)
  t.equal(bare.out.text(), general.out.text())

  const version = run(t, ['--version'])
  t.equal(await version.code, 0)
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }
  t.equal(version.out.text(), `${manifest.version}\n`)
})

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
      message: /PYVENT_PORT must be a port number, got "fifty"/,
      usage: /^Usage: pyvent send/
    },
    {
      argv: ['send', 'x', '--port', port],
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

t.test('send and listen: a round trip through start()', async (t) => {
  const port = String(ports.next())
  const listener = run(t, ['listen', 'order-food', '--port', port])
  t.match(await listener.status(/^pyvent: listening/), /^pyvent: listening on 127\.0\.0\.1:\d+ to "order-food" from sender "pyvent"; this process hosts the relay$/)

  const before = Date.now()
  const argument = run(t, ['send', 'order-food', '{"food":"sushi"}', '--port', port])
  t.equal(await argument.code, 0)
  t.equal(argument.out.text() + argument.err.text(), '', 'send prints nothing')
  const stdinStrings = run(t, ['send', 'order-food', '--port', port], { stdin: Readable.from(['{"food":', '"ramen"}']) })
  t.equal(await stdinStrings.code, 0)
  const stdinBytes = new PassThrough()
  stdinBytes.end('{"food":"udon"}\n')
  t.equal(await run(t, ['send', 'order-food', '--port', port], { stdin: stdinBytes }).code, 0)
  t.equal(await run(t, ['send', 'order-food', '--port', port], { stdin: terminal() }).code, 0, 'a terminal is not read')
  t.equal(await run(t, ['send', 'order-food', '--port', port]).code, 0, 'empty stdin')

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
