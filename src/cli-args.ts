/**
 * The `pyvent` command line as text: its options, the help of every command,
 * and the parsing that turns `argv` (and the environment) into a checked
 * {@link Call}, or a {@link UsageError} (exit code 2). Nothing here starts a
 * node; cli.ts runs the call.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { checkName } from './payload'
import { DEFAULTS, resolveOptions } from './options'
import { MAX_TIMEOUT } from './waiter'

const OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  url: { type: 'string' },
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
  port: '--port <port>',
  host: '--host <host>',
  url: '--url <url>',
  help: '-h, --help',
  version: '--version'
}

/** Options every command takes, with their help. */
const COMMON: Partial<Record<OptionName, string>> = {
  port: `the relay's port, and port + 1 (default: $PYVENT_PORT or ${DEFAULTS.port})`,
  host: `the relay's host (default: $PYVENT_HOST or ${DEFAULTS.host})`,
  url: 'Redis or NATS at this URL instead of the relay (default: $PYVENT_URL)',
  help: 'show this help'
}

/** A command line, checked and ready to run. */
export interface Call {
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
  /** The engine's URL (`--url` or `PYVENT_URL`), or `undefined` for the ZeroMQ relay. */
  url: string | undefined
}

/** What help and parsing know of a command (cli.ts runs it). */
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
}

/** The commands, by name. */
export type CommandName = 'send' | 'listen' | 'wait' | 'request' | 'serve'

/** A command line that cannot run: exit code 2, with a usage hint. */
export class UsageError extends Error {
  /** The command whose usage to show, if known. */
  readonly command: CommandName | undefined

  constructor(message: string, command?: CommandName) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

/** A payload parsed from the command line or standard input, or a UsageError. */
export function parseJson(text: string, where: string, command: CommandName): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`the payload ${where} is not valid JSON: ${(error as Error).message}`, command)
  }
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
    ].join('\n')
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
    ].join('\n')
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
    ].join('\n')
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
    ].join('\n')
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
    ].join('\n')
  }
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name)
}

function optionLines(options: Partial<Record<OptionName, string>>): string {
  const names = (Object.keys(LABELS) as OptionName[]).filter((name) => options[name] !== undefined)
  return names.map((name) => `  ${LABELS[name].padEnd(17)} ${options[name] as string}`).join('\n')
}

/** The usage line of a command, or of pyvent itself. */
export function usageLine(command: CommandName | undefined): string {
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

/**
 * `url` with the password of its user info masked, `user:***@`; a user info
 * without a colon may be a token (NATS), so all of it goes: `***@`. Every
 * server of a comma-separated list is masked.
 */
export function maskPassword(url: string): string {
  return url.replace(/\/\/([^@/]*)@/g, (_match, userInfo: string) => {
    const colon = userInfo.indexOf(':')
    return `//${colon === -1 ? '***' : `${userInfo.slice(0, colon)}:***`}@`
  })
}

/** Messages from parseArgs and JSON.parse may span lines; the CLI prints one. */
export function oneLine(text: string): string {
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
export function parse(argv: string[], env: NodeJS.ProcessEnv): { help: string } | Call {
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
  if (resolved.url !== undefined) {
    if (name === 'serve') {
      throw new UsageError('serve hosts the ZeroMQ relay, which a URL (--url or PYVENT_URL) replaces: leave the URL out to serve', name)
    }
    if (values.port !== undefined || values.host !== undefined) {
      throw new UsageError('--port and --host place the ZeroMQ relay, which a URL (--url or PYVENT_URL) replaces: give one or the other', name)
    }
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

