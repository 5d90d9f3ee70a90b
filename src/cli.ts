#!/usr/bin/env node
/**
 * The `pyvent` command line: `send`, `listen`, `wait`, `request` and `serve`,
 * each a thin layer over one {@link Node}. The module exports {@link start}, so
 * tests and other programs can run a command without a child process, and runs
 * itself only when executed directly.
 *
 * Exit codes: 0 success; 1 failure (timeout, remote error, relay unreachable,
 * port in use); 2 bad arguments or payload.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import createDebug from 'debug'
import { checkName } from './codec'
import type { PyventEvent } from './dispatcher'
import { RemoteError } from './errors'
import { DEFAULT_FILTER, Node } from './node'
import { DEFAULTS, resolveOptions } from './options'
import { Any } from './signal'
import { MAX_TIMEOUT } from './waiter'

const debug = createDebug('pyvent:cli')

/** The sender filter of listen and wait without --sender, passed explicitly so the status line cannot disagree. */

/** The streams and environment a command runs with. Every field defaults to the process's own. */
export interface CliIO {
  /** Where results go: one JSON line per event or reply, and help. @default process.stdout */
  stdout: NodeJS.WritableStream
  /** Where status lines and error messages go. @default process.stderr */
  stderr: NodeJS.WritableStream
  /**
   * Where `send` and `request` read their payload when the payload argument is
   * `-`, and only then. @default process.stdin
   */
  stdin: NodeJS.ReadableStream
  /** Where `PYVENT_PORT` and `PYVENT_HOST` are read when `--port` and `--host` are absent. @default process.env */
  env: NodeJS.ProcessEnv
  /**
   * When it aborts, `listen` and `serve` stop and exit with 0, and `wait` and
   * `request` give up. Without it, SIGINT and SIGTERM stop `listen` and `serve`.
   */
  abortSignal?: AbortSignal
}

const OPTIONS = {
  url: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  sender: { type: 'string' },
  timeout: { type: 'string' },
  all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' }
} as const

type OptionName = keyof typeof OPTIONS

/** How each option reads in help, in the order help lists them. */
const LABELS: Record<OptionName, string> = {
  sender: '--sender <name>',
  timeout: '--timeout <ms>',
  all: '--all',
  url: '--url <url>',
  port: '--port <port>',
  host: '--host <host>',
  help: '-h, --help',
  version: '--version'
}

/** Options every command takes, with their help. */
const COMMON: Partial<Record<OptionName, string>> = {
  url: 'run on this Redis (redis://, rediss://) or NATS server instead of the relay (default: $PYVENT_URL)',
  port: `the relay's port, and port + 1 (default: $PYVENT_PORT or ${DEFAULTS.port})`,
  host: `the relay's host (default: $PYVENT_HOST or ${DEFAULTS.host})`,
  help: 'show this help'
}

/** A command line, checked and ready to run. */
interface Call {
  command: CommandName
  /** The signal names: one for send, wait and request; any number for listen. */
  signals: string[]
  /** The payload argument, parsed; `undefined` when absent or `-` (JSON never parses to `undefined`). */
  payload: unknown
  /** The payload argument was `-`: read the payload from standard input. */
  payloadFromStdin: boolean
  sender: string | undefined
  timeout: number | undefined
  all: boolean
  port: number
  host: string
  /** The engine's URL (from --url or PYVENT_URL), or `undefined` for the relay. */
  url: string | undefined
}

interface Command {
  /** What follows the command name in a usage line. */
  synopsis: string
  /** One line for the list of commands. */
  summary: string
  /** Least and most arguments after the command name. */
  arity: readonly [number, number]
  /** What `<signal>`-like arguments are missing when there are too few. */
  missing?: string
  /** This command's options beyond the common ones, with their help. */
  options: Partial<Record<OptionName, string>>
  /** Help text between the usage line and the options. */
  details: string
  run(call: Call, io: CliIO): Promise<number>
}

type CommandName = 'send' | 'listen' | 'wait' | 'request' | 'serve'

/** A command line that cannot run: exit code 2, with a usage hint. */
class UsageError extends Error {
  /** The command whose usage to show, if known. */
  readonly command: CommandName | undefined

  constructor(message: string, command?: CommandName) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

/** Where the relay is, as `host:port` (`[host]:port` for IPv6), or the server's URL with its password masked. */
function address(node: Node): string {
  const { host, port, url } = node.options
  if (url !== undefined) return url.replace(/\/\/[^@/]*@/, '//***@')
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

/** One event as a line of JSON: the fields a shell script needs, in a fixed order. */
function eventLine(event: PyventEvent): string {
  const { signal, sender, id, timestamp, payload } = event
  return `${JSON.stringify({ signal, sender, id, timestamp, payload })}\n`
}

function quoteAll(names: string[]): string {
  return names.map((name) => JSON.stringify(name)).join(', ')
}

/** Runs `body` with a node on the call's relay address, and stops the node (flushing it) afterwards. */
async function withNode(call: Call, io: CliIO, body: (node: Node) => Promise<number>): Promise<number> {
  // With a URL, only the URL: the relay's options would only draw a warning.
  const node = new Node(call.url === undefined ? { port: call.port, host: call.host } : { url: call.url })
  node.on('error', (error) => {
    debug('node error: %O', error)
    io.stderr.write(`pyvent: ${oneLine(error.message)}\n`)
  })
  try {
    return await body(node)
  } finally {
    await node.stop()
  }
}

/**
 * Resolves when a long-running command should end: on SIGINT or SIGTERM (or,
 * when the caller gave one, when `io.abortSignal` aborts), or with the error
 * when `output` fails (a closed pipe). Holds the process open meanwhile,
 * because the relay process does not.
 */
function untilStopped(io: CliIO, output?: NodeJS.WritableStream): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 2 ** 30)
    const finish = (error?: Error): void => {
      clearInterval(keepAlive)
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      io.abortSignal?.removeEventListener('abort', onAbort)
      output?.off('error', finish)
      resolve(error)
    }
    const onSignal = (signal: NodeJS.Signals): void => {
      debug('%s: stopping', signal)
      finish()
    }
    const onAbort = (): void => finish()
    output?.on('error', finish)
    if (io.abortSignal === undefined) {
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
    } else if (io.abortSignal.aborted) finish()
    else io.abortSignal.addEventListener('abort', onAbort, { once: true })
  })
}

function parseJson(text: string, where: string, command: CommandName): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`the payload ${where} is not valid JSON: ${(error as Error).message}`, command)
  }
}

/**
 * The payload argument, or standard input read to its end when the argument is
 * `-`; `undefined` (sent as `{}`) when the argument is absent or the input empty.
 * Standard input is read only for `-`: a command run with an open pipe that
 * never ends (exec() from Node, a `while read` loop) must not wait on it.
 */
async function readPayload(call: Call, io: CliIO): Promise<unknown> {
  if (!call.payloadFromStdin) return call.payload
  const chunks: Buffer[] = []
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  const text = Buffer.concat(chunks).toString('utf8')
  return text.trim() === '' ? undefined : parseJson(text, 'on standard input', call.command)
}

async function runSend(call: Call, io: CliIO): Promise<number> {
  const payload = await readPayload(call, io)
  return withNode(call, io, async (node) => {
    await node.send(call.signals[0] as string, payload, { sender: call.sender })
    // stop() flushes too, but cannot tell whether the relay took the event: a round trip can.
    await node.ready()
    return 0
  })
}

async function runListen(call: Call, io: CliIO): Promise<number> {
  return withNode(call, io, async (node) => {
    // Ready before connecting, so an unreachable relay is reported once (by the
    // rejection here), not also through the error event of the listeners' own start.
    await node.ready()
    const print = (_payload: unknown, event: PyventEvent): void => {
      io.stdout.write(eventLine(event))
    }
    const sender = call.all ? Any : (call.sender ?? DEFAULT_FILTER)
    if (call.all || call.signals.length === 0) node.connect(Any, print, { sender })
    for (const signal of new Set(call.signals)) node.connect(signal, print, { sender })
    await node.ready()
    const what = call.signals.length === 0 ? 'every signal' : quoteAll([...new Set(call.signals)])
    const from = sender === Any ? 'every sender' : `sender ${JSON.stringify(sender)}`
    const hosting = node.isServer() ? '; this process hosts the relay' : ''
    io.stderr.write(`pyvent: listening on ${address(node)} to ${what} from ${from}${hosting}\n`)
    const error = await untilStopped(io, io.stdout)
    // A closed pipe (`pyvent listen | head -1`) is a normal way to stop listening.
    if (error !== undefined && (error as NodeJS.ErrnoException).code !== 'EPIPE') throw error
    return 0
  })
}

async function runWait(call: Call, io: CliIO): Promise<number> {
  return withNode(call, io, async (node) => {
    const signal = call.signals[0] as string
    const sender = call.sender ?? DEFAULT_FILTER
    const event = node.waitFor(signal, { sender, timeout: call.timeout, abortSignal: io.abortSignal })
    // The status line tells scripts (and tests) that an event sent from now on will be seen.
    // The race ends early if the wait fails first (a timeout shorter than the start).
    await Promise.race([node.ready(), event])
    io.stderr.write(`pyvent: waiting on ${address(node)} for ${JSON.stringify(signal)} from sender ${JSON.stringify(sender)}\n`)
    io.stdout.write(eventLine(await event))
    return 0
  })
}

async function runRequest(call: Call, io: CliIO): Promise<number> {
  const payload = await readPayload(call, io)
  return withNode(call, io, async (node) => {
    const options = { sender: call.sender, timeout: call.timeout, abortSignal: io.abortSignal }
    const reply = await node.request(call.signals[0] as string, payload, options)
    io.stdout.write(`${JSON.stringify(reply)}\n`)
    return 0
  })
}

async function runServe(call: Call, io: CliIO): Promise<number> {
  if (call.url !== undefined) {
    io.stderr.write('pyvent: serve hosts the relay; with a URL (--url or PYVENT_URL) the server there carries the events already: nothing to serve.\n')
    return 2
  }
  return withNode(call, io, async (node) => {
    node.on('relay', (hosting) => debug('hosting the relay: %s', hosting))
    const { port } = node.options
    if (!(await node.startServer())) {
      io.stderr.write(
        `pyvent: cannot serve on ${address(node)}: port ${port} or ${port + 1} is in use (by a running relay or another program); choose another port with --port or PYVENT_PORT.\n`
      )
      return 1
    }
    io.stderr.write(`pyvent: relay running on ${address(node)} (ports ${port} and ${port + 1}); stop it with Ctrl-C\n`)
    await untilStopped(io)
    return 0
  })
}

const COMMANDS: Record<CommandName, Command> = {
  send: {
    synopsis: 'send <signal> [json | -] [options]',
    summary: 'send one event (payload [json], - for standard input)',
    arity: [1, 2],
    missing: '<signal>',
    options: { sender: 'the sender name listeners filter on (default: pyvent)' },
    details: [
      'Sends one event and exits with 0 once the relay has forwarded it. The payload is',
      'the [json] argument; with - instead, standard input read to its end. Standard',
      'input is read only for -. Without [json], or with - and empty input, it is {}.',
      '',
      'Examples:',
      `  pyvent send order-food '{"food":"sushi"}'`,
      `  echo '{"food":"ramen"}' | pyvent send order-food - --sender kitchen`,
      '  pyvent send build-done'
    ].join('\n'),
    run: runSend
  },
  listen: {
    synopsis: 'listen [signal...] [options]',
    summary: 'print matching events, one JSON line each, until stopped',
    arity: [0, Infinity],
    options: {
      sender: 'only events from this sender or below it (default: pyvent)',
      all: 'every signal from every sender (not with signal names or --sender)'
    },
    details: [
      'Prints each matching event on standard output as one line of JSON:',
      '  {"signal":...,"sender":...,"id":...,"timestamp":...,"payload":...}',
      'With no signal names, listens to every signal. A sender filter also matches the',
      'senders below it: --sender orders matches orders.eu. --all is a monitor: every',
      'signal from every sender. Status lines go to standard error, so the output can',
      'be piped. Stops, with exit code 0, on Ctrl-C (SIGINT) or SIGTERM.',
      '',
      'Examples:',
      '  pyvent listen order-food',
      '  pyvent listen --all'
    ].join('\n'),
    run: runListen
  },
  wait: {
    synopsis: 'wait <signal> [options]',
    summary: 'print the first matching event and exit',
    arity: [1, 1],
    missing: '<signal>',
    options: {
      sender: 'only an event from this sender or below it (default: pyvent)',
      timeout: 'give up after this many milliseconds (default: wait forever)'
    },
    details: [
      'Prints the first matching event as one line of JSON (as listen does) and exits',
      'with 0; exits with 1 if none came within --timeout.',
      '',
      'Example:',
      `  pyvent wait build-done --timeout 60000 && echo 'the build is done'`
    ].join('\n'),
    run: runWait
  },
  request: {
    synopsis: 'request <signal> [json | -] [options]',
    summary: 'send a request and print the reply',
    arity: [1, 2],
    missing: '<signal>',
    options: {
      sender: 'the sender name the responder sees in event.sender (default: pyvent)',
      timeout: 'give up after this many milliseconds (default: 5000)'
    },
    details: [
      'Sends a request and prints the reply as one line of JSON. The relay hands it to',
      'one responder (registered with respond() in a node). The payload is as for send:',
      'the [json] argument, standard input for -, else {}. Exits with 1 if no responder',
      'is registered, none answered within --timeout, or the responder failed.',
      '',
      'Examples:',
      `  pyvent request add '{"a":1,"b":2}'`,
      `  echo '{"a":1,"b":2}' | pyvent request add -`
    ].join('\n'),
    run: runRequest
  },
  serve: {
    synopsis: 'serve [options]',
    summary: 'run a standalone relay in the foreground',
    arity: [0, 0],
    options: {},
    details: [
      'Hosts the relay that nodes on this port talk through, so that no script has to.',
      'Exits with 1 if the ports are taken; stops, with exit code 0, on Ctrl-C (SIGINT)',
      'or SIGTERM.',
      '',
      'Example:',
      '  pyvent serve --port 50100'
    ].join('\n'),
    run: runServe
  }
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name)
}

function optionLines(options: Partial<Record<OptionName, string>>): string {
  const names = (Object.keys(LABELS) as OptionName[]).filter((name) => options[name] !== undefined)
  return names.map((name) => `  ${LABELS[name].padEnd(17)} ${options[name] as string}`).join('\n')
}

function usageLine(command: CommandName | undefined): string {
  return `Usage: pyvent ${command === undefined ? '<command> [options]' : COMMANDS[command].synopsis}`
}

function commandHelp(name: CommandName): string {
  const command = COMMANDS[name]
  return `${usageLine(name)}\n\n${command.details}\n\nOptions:\n${optionLines({ ...command.options, ...COMMON })}\n`
}

function generalHelp(): string {
  const commands = (Object.keys(COMMANDS) as CommandName[]).map((name) => {
    const { synopsis, summary } = COMMANDS[name]
    return `  ${synopsis.replace(' [options]', '').padEnd(24)} ${summary}`
  })
  return [
    usageLine(undefined),
    '',
    'Sends, receives and relays pyvent events from the shell.',
    '',
    'Commands:',
    ...commands,
    '',
    'Options:',
    optionLines({ ...COMMON, version: 'print the version' }),
    '',
    'Run "pyvent <command> --help" for the options of one command.',
    'Exit codes: 0 success; 1 failure (timeout, remote error, relay unreachable); 2 bad arguments.',
    'Set DEBUG=pyvent:* for diagnostics on standard error.',
    ''
  ].join('\n')
}

function version(): string {
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }
  return `${manifest.version}\n`
}

/** Messages from parseArgs and JSON.parse may span lines; the CLI prints one. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ')
}

function integer(flag: string, raw: string | undefined, min: number, max: number, command: CommandName): number | undefined {
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${raw}"`, command)
  }
  return value
}

function checked(name: string, what: string, command: CommandName): string {
  try {
    return checkName(name, what)
  } catch (error) {
    throw new UsageError((error as Error).message, command)
  }
}

/** Parses and checks a command line; returns a help text to print, or the call to run. */
function parse(argv: string[], env: NodeJS.ProcessEnv): { help: string } | Call {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true })
  } catch (error) {
    throw new UsageError((error as Error).message, argv.find(isCommand))
  }
  const { values, positionals, tokens } = parsed
  const [name, ...args] = positionals
  if (name === undefined) {
    if (values.help === true) return { help: generalHelp() }
    if (values.version === true) return { help: version() }
    throw new UsageError('missing the command (send, listen, wait, request or serve)')
  }
  if (name === 'help') {
    const topic = args[0]
    if (topic === undefined) return { help: generalHelp() }
    if (isCommand(topic)) return { help: commandHelp(topic) }
    throw new UsageError(`no help for "${topic}": it is not a command`)
  }
  if (!isCommand(name)) throw new UsageError(`unknown command "${name}"`)
  const command = COMMANDS[name]
  for (const token of tokens) {
    if (token.kind === 'option' && command.options[token.name as OptionName] === undefined && COMMON[token.name as OptionName] === undefined) {
      throw new UsageError(`"pyvent ${name}" has no option ${token.rawName}`, name)
    }
  }
  if (values.help === true) return { help: commandHelp(name) }

  const [least, most] = command.arity
  if (args.length < least) throw new UsageError(`missing the ${command.missing as string} argument`, name)
  if (args.length > most) {
    const hint = most === 2 ? ' (quote the JSON payload so the shell passes it as one argument)' : ''
    throw new UsageError(`unexpected argument "${args[most] as string}"${hint}`, name)
  }
  const sendsPayload = name === 'send' || name === 'request'
  const signals = (sendsPayload ? args.slice(0, 1) : args).map((signal) => checked(signal, 'signal', name))
  const json = sendsPayload ? args[1] : undefined
  const sender = values.sender === undefined ? undefined : checked(values.sender, sendsPayload ? 'sender' : 'sender filter', name)
  if (values.all === true && (signals.length > 0 || sender !== undefined)) {
    throw new UsageError('--all listens to every signal from every sender: give no signal names and no --sender with it', name)
  }
  let resolved
  try {
    resolved = resolveOptions({ port: integer('--port', values.port, 1, 65534, name), host: values.host, url: values.url }, env)
  } catch (error) {
    if (error instanceof UsageError) throw error
    throw new UsageError((error as Error).message, name)
  }
  return {
    command: name,
    signals,
    payload: json === undefined || json === '-' ? undefined : parseJson(json, 'argument', name),
    payloadFromStdin: json === '-',
    sender,
    // setTimeout's limit: a longer timeout would fire at once.
    timeout: integer('--timeout', values.timeout, 0, MAX_TIMEOUT, name),
    all: values.all === true,
    port: resolved.port,
    host: resolved.host,
    url: resolved.url
  }
}

/** Prints why a command failed and returns its exit code. */
function fail(error: unknown, command: CommandName | undefined, stderr: NodeJS.WritableStream): number {
  const { code } = error as { code?: unknown }
  // A payload JSON can parse but pyvent cannot send (1e999, too large) is bad input too.
  if (error instanceof UsageError || code === 'ERR_PYVENT_INVALID_PAYLOAD' || code === 'ERR_PYVENT_MESSAGE_TOO_LARGE') {
    const hint = error instanceof UsageError ? error.command : command
    const more = hint === undefined ? 'pyvent --help' : `pyvent ${hint} --help`
    stderr.write(`pyvent: ${oneLine((error as Error).message)}\n${usageLine(hint)}\nRun "${more}" for more.\n`)
    return 2
  }
  debug('%s failed: %O', command, error)
  const message =
    error instanceof RemoteError ? `the responder failed with ${error.remoteName}: ${error.message}` : (error as Error).message
  stderr.write(`pyvent: ${oneLine(message)}\n`)
  return 1
}

/**
 * Runs one `pyvent` command line and resolves with its exit code: 0 on success,
 * 1 on failure (timeout, remote error, relay unreachable, port in use), 2 for
 * bad arguments or payload. Never rejects: every failure is reported on
 * `io.stderr`. `listen` and `serve` run until SIGINT or SIGTERM, or until
 * `io.abortSignal` aborts when it is given.
 *
 * @example
 * ```ts
 * import { start } from 'pyvent/cli'
 * process.exitCode = await start(['send', 'order-food', '{"food":"sushi"}'])
 * ```
 *
 * @param argv - the arguments after the program name, as in `process.argv.slice(2)`.
 * @param io - streams, environment and abort signal; each defaults to the process's own.
 */
export async function start(argv: string[], io: Partial<CliIO> = {}): Promise<number> {
  const streams: CliIO = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    stdin: io.stdin ?? process.stdin,
    env: io.env ?? process.env,
    abortSignal: io.abortSignal
  }
  let command: CommandName | undefined
  try {
    const call = parse(argv, streams.env)
    if ('help' in call) {
      streams.stdout.write(call.help)
      return 0
    }
    command = call.command
    debug('running %s %o', command, call)
    return await COMMANDS[command].run(call, streams)
  } catch (error) {
    return fail(error, command, streams.stderr)
  }
}

if (require.main === module) {
  // Output piped into a program that exits early (`pyvent listen | head -1`): not a crash.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => debug('stdout: %s', error.code))
  void start(process.argv.slice(2)).then((code) => {
    process.exitCode = code
  })
}
