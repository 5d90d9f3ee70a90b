#!/usr/bin/env node
/**
 * The `pyvent` command line: `send`, `listen`, `wait`, `request` and `serve`,
 * each a thin layer over one {@link Node}. The module exports {@link start}, so
 * tests and other programs can run a command without a child process, and runs
 * itself only when executed directly. The arguments and the help are in
 * cli-args.ts; this file runs the commands.
 *
 * Exit codes: 0 success; 1 failure (timeout, remote error, relay unreachable,
 * port in use); 2 bad arguments or payload.
 *
 * @module
 */
import createDebug from 'debug'
import { Call, CommandName, maskPassword, oneLine, parse, parseJson, usageLine, UsageError } from './cli-args'
import type { PyventEvent } from './dispatcher'
import { RemoteError } from './errors'
import { DEFAULT_FILTER, Node } from './node'
import { Any } from './signal'

const debug = createDebug('pyvent:cli')

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
  /**
   * Where `PYVENT_PORT`, `PYVENT_HOST` and `PYVENT_URL` are read when `--port`,
   * `--host` and `--url` are absent. @default process.env
   */
  env: NodeJS.ProcessEnv
  /**
   * When it aborts, `listen` and `serve` stop and exit with 0, and `wait` and
   * `request` give up. Without it, SIGINT and SIGTERM stop `listen` and `serve`.
   */
  abortSignal?: AbortSignal
}

/** Where the node meets the others: the relay as `host:port` (`[host]:port` for IPv6), or the engine's URL, masked. */
function address(node: Node): string {
  const { host, port, url } = node.options
  if (url !== undefined) return maskPassword(url)
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
  // The call's environment decides, not the process's: a URL (or '', no URL) always goes with the options.
  const node = new Node(call.url === undefined ? { port: call.port, host: call.host, url: '' } : { url: call.url })
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

/** What runs each command (cli-args.ts has their help and arguments). */
const RUNS: Record<CommandName, (call: Call, io: CliIO) => Promise<number>> = {
  send: runSend,
  listen: runListen,
  wait: runWait,
  request: runRequest,
  serve: runServe
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
    return await RUNS[command](call, streams)
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
