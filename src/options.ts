/**
 * Node options: their types, defaults, environment overrides and validation.
 *
 * @module
 */
import { checkCurve, CurveOptions, curveFromEnv } from './security'
import { InvalidArgumentError } from './errors'

/** How the relay treats a listener that cannot keep up. */
export type DeliveryMode = 'lossless' | 'drop'

/** Options of a {@link Node}. Every field is optional; the defaults suit two scripts on one machine. */
export interface NodeOptions {
  /**
   * The engine to run on, chosen by URL: `redis://[user:password@]host:port[/db]`
   * or `rediss://` (TLS) for Redis; `nats://host:port`, a comma-separated list of
   * a cluster's seed servers, or `tls://host:port` for NATS. Without a URL,
   * pyvent runs on its zero-config ZeroMQ relay. The engine's client package
   * (`redis`, or `@nats-io/transport-node`) must be installed.
   * Overridden by the `PYVENT_URL` environment variable when the option is not given.
   * @default none: the ZeroMQ relay
   */
  url?: string
  /**
   * NATS authentication, for a `nats://` URL (NATS has its own security: CURVE
   * applies to the relay only).
   * @default none
   */
  nats?: NatsAuthOptions
  /**
   * The most events a durable work group's stream keeps (Redis and NATS): older
   * ones are trimmed, even when no member has handled them yet.
   * @default 100000
   */
  maxStreamLength?: number
  /**
   * The relay's publisher port; its pull port is `port + 1`.
   * Overridden by the `PYVENT_PORT` environment variable when the option is not given.
   * @default 50020
   */
  port?: number
  /**
   * The address the relay binds and clients connect to. Anything but loopback
   * exposes the relay to the network: read the Security section of the README first.
   * Overridden by the `PYVENT_HOST` environment variable when the option is not given.
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * Whether this node may host the relay. A node that may not is a client only and
   * waits for a relay to appear.
   * @default true
   */
  server?: boolean
  /**
   * A name for this node. Events it sends default to the sender `pyvent.<id>`
   * (just `pyvent` for the default id).
   * @default 'pyvent'
   */
  id?: string
  /**
   * How long, in milliseconds, queued events may take to flush when the node
   * stops or its process exits. After that they are dropped and the process exits.
   * @default 2000
   */
  linger?: number
  /**
   * How long `ready()` (and a first `send()`/`waitFor()`) waits for the relay to
   * answer before failing with `RelayUnreachableError`, in milliseconds.
   * @default 5000
   */
  readyTimeout?: number
  /**
   * How often the relay publishes a heartbeat, in milliseconds.
   * @default 100
   */
  heartbeatInterval?: number
  /**
   * The failure-detection window: a node that hears no heartbeat for this long
   * considers the relay gone and, if it may serve, tries to take the relay over.
   * @default 300
   */
  relayTimeout?: number
  /**
   * The largest body frame (the JSON array of a message's payloads), in bytes.
   * `send()` rejects a payload that would exceed it, batches stay under it, and
   * the sockets refuse larger frames before buffering them (they allow a fixed
   * 4 KiB more for the topic and header frames). Give every node on a port the
   * same value: a listener with a smaller one cannot take what the relay passes.
   * @default 1048576
   */
  maxMessageSize?: number
  /**
   * `'lossless'`: a slow listener slows the senders down (their `send()` waits);
   * nothing is dropped. `'drop'`: the relay drops what a slow listener cannot take,
   * and counts it. Applies when this node hosts the relay.
   * @default 'lossless'
   */
  delivery?: DeliveryMode
  /**
   * Queue limit, in messages, of every socket queue (the sender's, the relay's
   * and each listener's). A message is one batch of at most 32 KiB of payload
   * text, so this bounds memory at every hop.
   * @default 64
   */
  highWaterMark?: number
  /**
   * CURVE keys: authenticate every node and encrypt all traffic. Loaded from the
   * JSON file named by `PYVENT_CURVE_KEYS` when the option is not given. See the
   * Security section of the README.
   * @default none: plain TCP, open to anyone who can reach the port
   */
  curve?: CurveOptions
}

/** NATS credentials (give at most one way). */
export interface NatsAuthOptions {
  /** User name, with `pass`. */
  user?: string
  pass?: string
  /** An authentication token. */
  token?: string
  /** An NKey seed (`SU...`): the client signs the server's nonce with it. */
  nkeySeed?: string
  /** The path of a `.creds` file (a user JWT and its NKey seed). */
  credsFile?: string
}

/** Options with every default applied. */
export type ResolvedOptions = Required<Omit<NodeOptions, 'curve' | 'url' | 'nats'>> & {
  curve: CurveOptions | undefined
  url: string | undefined
  nats: NatsAuthOptions | undefined
}

/** The URL schemes of each engine. */
export const URL_SCHEMES: Readonly<Record<string, 'redis' | 'nats'>> = Object.freeze({
  'redis:': 'redis',
  'rediss:': 'redis',
  'nats:': 'nats',
  'tls:': 'nats'
})

/** The default options, before environment overrides. */
export const DEFAULTS: Readonly<ResolvedOptions> = Object.freeze({
  port: 50020,
  host: '127.0.0.1',
  server: true,
  id: 'pyvent',
  linger: 2000,
  readyTimeout: 5000,
  heartbeatInterval: 100,
  relayTimeout: 300,
  maxMessageSize: 1024 * 1024,
  delivery: 'lossless',
  highWaterMark: 64,
  maxStreamLength: 100_000,
  curve: undefined,
  url: undefined,
  nats: undefined
})

const KNOWN = new Set(Object.keys(DEFAULTS))

function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`Option "${name}" must be an integer from ${min} to ${max}, got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}.`)
  }
  return value
}

function envPort(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.PYVENT_PORT
  if (raw === undefined || raw === '') return undefined
  const port = Number(raw)
  if (!/^\d+$/.test(raw) || port < 1 || port > 65534) {
    throw new InvalidArgumentError(`PYVENT_PORT must be a port number from 1 to 65534, got "${raw}".`)
  }
  return port
}

/**
 * Applies defaults and environment overrides and validates every field,
 * throwing a `TypeError` that names the option and what it must be.
 */
export function resolveOptions(options: NodeOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`Node options must be an object, got ${options === null ? 'null' : typeof options}.`)
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new InvalidArgumentError(`Unknown option "${key}". Known options: ${[...KNOWN].join(', ')}.`)
  }
  const merged: Record<string, unknown> = { ...DEFAULTS }
  // The environment only fills in what the options leave out.
  if (options.port === undefined) {
    const port = envPort(env)
    if (port !== undefined) merged.port = port
  }
  if (options.host === undefined && env.PYVENT_HOST) merged.host = env.PYVENT_HOST
  if (options.url === undefined && env.PYVENT_URL) merged.url = env.PYVENT_URL
  for (const [key, value] of Object.entries(options)) if (value !== undefined) merged[key] = value

  const resolved: ResolvedOptions = {
    port: integer('port', merged.port, 1, 65534),
    host: merged.host as string,
    server: merged.server as boolean,
    id: merged.id as string,
    linger: integer('linger', merged.linger, 0, 3_600_000),
    readyTimeout: integer('readyTimeout', merged.readyTimeout, 1, 3_600_000),
    heartbeatInterval: integer('heartbeatInterval', merged.heartbeatInterval, 10, 60_000),
    relayTimeout: integer('relayTimeout', merged.relayTimeout, 20, 3_600_000),
    maxMessageSize: integer('maxMessageSize', merged.maxMessageSize, 256, 256 * 1024 * 1024),
    delivery: merged.delivery as DeliveryMode,
    highWaterMark: integer('highWaterMark', merged.highWaterMark, 1, 1_000_000),
    maxStreamLength: integer('maxStreamLength', merged.maxStreamLength, 1, 1_000_000_000),
    curve: options.curve !== undefined ? checkCurve(options.curve, 'Option "curve"') : curveFromEnv(env),
    url: checkUrl(merged.url),
    nats: checkNatsAuth(merged.nats)
  }
  if (typeof resolved.host !== 'string' || resolved.host.length === 0 || /[\s/]/.test(resolved.host)) {
    throw new InvalidArgumentError(`Option "host" must be a host name or IP address, got ${String(resolved.host)}.`)
  }
  if (typeof resolved.server !== 'boolean') throw new InvalidArgumentError(`Option "server" must be true or false.`)
  if (typeof resolved.id !== 'string' || !/^[\w-]+(\.[\w-]+)*$/.test(resolved.id)) {
    throw new InvalidArgumentError(
      `Option "id" must be a non-empty name of letters, digits, "_", "-" and dots, got ${String(resolved.id)}.`
    )
  }
  if (resolved.delivery !== 'lossless' && resolved.delivery !== 'drop') {
    throw new InvalidArgumentError(`Option "delivery" must be "lossless" or "drop", got ${String(resolved.delivery)}.`)
  }
  if (resolved.relayTimeout <= resolved.heartbeatInterval) {
    throw new InvalidArgumentError(
      `Option "relayTimeout" (${resolved.relayTimeout}) must be longer than "heartbeatInterval" (${resolved.heartbeatInterval}).`
    )
  }
  return resolved
}

/** A URL of a known engine, or `undefined`; a `TypeError` naming what is wrong otherwise. */
function checkUrl(value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined
  const shown = typeof value === 'string' ? value.replace(/\/\/[^@/]*@/, '//***@') : String(value)
  if (typeof value !== 'string') throw new InvalidArgumentError(`Option "url" must be a string, got ${shown}.`)
  const scheme = /^[a-z]+:/i.exec(value)?.[0].toLowerCase()
  if (scheme === undefined || URL_SCHEMES[scheme] === undefined) {
    throw new InvalidArgumentError(
      `Option "url" (or PYVENT_URL) must start with redis://, rediss://, nats:// or tls://, got "${shown}". ` +
        'Leave it out to use the ZeroMQ relay.'
    )
  }
  return value
}

function checkNatsAuth(value: unknown): NatsAuthOptions | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null) throw new InvalidArgumentError('Option "nats" must be an object.')
  const known = ['user', 'pass', 'token', 'nkeySeed', 'credsFile']
  for (const [key, field] of Object.entries(value)) {
    if (!known.includes(key)) throw new InvalidArgumentError(`Unknown field "nats.${key}". Known fields: ${known.join(', ')}.`)
    if (typeof field !== 'string' || field === '') throw new InvalidArgumentError(`Option "nats.${key}" must be a non-empty string.`)
  }
  return { ...(value as NatsAuthOptions) }
}

/** Default ports of the URL schemes. */
const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'redis:': 6379, 'rediss:': 6379, 'nats:': 4222, 'tls:': 4222 }

/** The host and port a node reaches: the relay's, or the first server of its URL. */
export function addressOf(options: Pick<ResolvedOptions, 'url' | 'host' | 'port'>): { host: string; port: number } {
  if (options.url === undefined) return { host: options.host, port: options.port }
  const first = options.url.split(',')[0] as string
  const scheme = /^[a-z]+:/i.exec(first)?.[0].toLowerCase() ?? ''
  try {
    const url = new URL(first.includes('://') ? first : `${scheme}//${first}`)
    return { host: url.hostname, port: url.port === '' ? (DEFAULT_PORTS[scheme] ?? 0) : Number(url.port) }
  } catch {
    return { host: first, port: DEFAULT_PORTS[scheme] ?? 0 }
  }
}
