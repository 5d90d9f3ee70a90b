/**
 * Error classes. Every error pyvent raises carries a stable `code` that
 * programs can test instead of parsing messages.
 *
 * @module
 */

/** The stable codes of the errors pyvent raises. */
export type PyventErrorCode =
  | 'ERR_PYVENT_TIMEOUT'
  | 'ERR_PYVENT_ABORTED'
  | 'ERR_PYVENT_RELAY_UNREACHABLE'
  | 'ERR_PYVENT_ALREADY_STARTED'
  | 'ERR_PYVENT_STOPPED'
  | 'ERR_PYVENT_INVALID_PAYLOAD'
  | 'ERR_PYVENT_MESSAGE_TOO_LARGE'
  | 'ERR_PYVENT_PROTOCOL'
  | 'ERR_PYVENT_REMOTE'
  | 'ERR_PYVENT_NO_RESPONDERS'
  | 'ERR_PYVENT_LISTENER'
  | 'ERR_PYVENT_UNSUPPORTED'
  | 'ERR_PYVENT_MISSING_DEPENDENCY'
  | 'ERR_PYVENT_CONNECTION_LOST'
  | 'ERR_PYVENT_SEND_FAILED'
  | 'ERR_PYVENT_INVALID_ARGUMENT'

/**
 * A call's argument or option is not what pyvent accepts: a signal name with a
 * NUL or over 255 bytes, a listener that is not a function, an option out of
 * range. A `TypeError` (its `name` is `'TypeError'`, as for Node's own
 * argument errors), with a stable `code` to test.
 */
export class InvalidArgumentError extends TypeError {
  readonly code = 'ERR_PYVENT_INVALID_ARGUMENT' as const

  constructor(message: string) {
    super(message)
    this.name = 'TypeError'
  }
}

/** Base class of the errors that are not argument `TypeError`s. */
export class PyventError extends Error {
  /** A stable identifier for the kind of failure. */
  readonly code: PyventErrorCode

  constructor(code: PyventErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'PyventError'
  }
}

/** A `waitFor` or `request` did not see a matching event in time, or `flush()` was not confirmed within `linger`. */
export class TimeoutError extends PyventError {
  /** The time limit that passed, in milliseconds. */
  readonly timeout: number

  constructor(message: string, timeout: number) {
    super('ERR_PYVENT_TIMEOUT', message)
    this.name = 'TimeoutError'
    this.timeout = timeout
  }
}

/** The `AbortSignal` given to a `waitFor` or `request` fired. */
export class AbortError extends PyventError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PYVENT_ABORTED', message, options)
    this.name = 'AbortError'
  }
}

/**
 * No pyvent relay (or, with a URL, no Redis or NATS server) answered at the
 * configured address in time: nothing is listening there and this node may not
 * host the relay, or another program (one that does not speak pyvent) holds
 * the port.
 */
export class RelayUnreachableError extends PyventError {
  /** The host the node tried (on Redis or NATS: the first server of the URL). */
  readonly host: string
  /** The relay's publisher port (its pull port is `port + 1`), or the server's port. */
  readonly port: number

  constructor(message: string, host: string, port: number) {
    super('ERR_PYVENT_RELAY_UNREACHABLE', message)
    this.name = 'RelayUnreachableError'
    this.host = host
    this.port = port
  }
}

/** `configure()` was called after the node started. */
export class AlreadyStartedError extends PyventError {
  constructor(message: string) {
    super('ERR_PYVENT_ALREADY_STARTED', message)
    this.name = 'AlreadyStartedError'
  }
}

/** The node was stopped while this operation was still waiting. */
export class StoppedError extends PyventError {
  constructor(message: string) {
    super('ERR_PYVENT_STOPPED', message)
    this.name = 'StoppedError'
  }
}

/** A payload that JSON cannot carry faithfully (a function, a cycle, a BigInt, a symbol, NaN). */
export class InvalidPayloadError extends TypeError {
  readonly code = 'ERR_PYVENT_INVALID_PAYLOAD' as const

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidPayloadError'
  }
}

/** A payload whose encoding is larger than the node's `maxMessageSize`. */
export class MessageTooLargeError extends RangeError {
  readonly code = 'ERR_PYVENT_MESSAGE_TOO_LARGE' as const
  /** The encoded size in bytes. */
  readonly size: number
  /** The limit in bytes. */
  readonly limit: number

  constructor(message: string, size: number, limit: number) {
    super(message)
    this.name = 'MessageTooLargeError'
    this.size = size
    this.limit = limit
  }
}

/** A message on the wire that does not follow the pyvent protocol. */
export class ProtocolError extends PyventError {
  constructor(message: string) {
    super('ERR_PYVENT_PROTOCOL', message)
    this.name = 'ProtocolError'
  }
}

/** The responder of a `request` threw; `remoteName` and `message` are the remote error's. */
export class RemoteError extends PyventError {
  /** The `name` of the error the responder threw (for example `'TypeError'`). */
  readonly remoteName: string

  constructor(remoteName: string, message: string) {
    super('ERR_PYVENT_REMOTE', message)
    this.name = 'RemoteError'
    this.remoteName = remoteName
  }
}

/** A `request` reached the relay while no responder was registered for its signal. */
export class NoRespondersError extends PyventError {
  /** The signal nobody responds to. */
  readonly signal: string

  constructor(signal: string) {
    super(
      'ERR_PYVENT_NO_RESPONDERS',
      `No responder is registered for "${signal}": register one with respond("${signal}", handler) in a node on the same relay or server, and wait for its ready() before requesting.`
    )
    this.name = 'NoRespondersError'
    this.signal = signal
  }
}

/** A listener threw or rejected; reported through the node's `error` event. */
export class ListenerError extends PyventError {
  /** The signal of the event the listener was handling. */
  readonly signal: string

  constructor(signal: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    super('ERR_PYVENT_LISTENER', `A listener for "${signal}" failed: ${reason}`, { cause })
    this.name = 'ListenerError'
    this.signal = signal
  }
}

/** The engine in use cannot do what was asked (a durable group on the relay, which stores nothing). */
export class UnsupportedError extends PyventError {
  /** The engine: `'relay'`, `'redis'` or `'nats'`. */
  readonly engine: string

  constructor(engine: string, message: string, options?: ErrorOptions) {
    super('ERR_PYVENT_UNSUPPORTED', message, options)
    this.name = 'UnsupportedError'
    this.engine = engine
  }
}

/** The URL names an engine whose client package is not installed. */
export class MissingDependencyError extends PyventError {
  /** The npm package to install. */
  readonly packageName: string

  constructor(packageName: string, url: string, options?: { cause?: unknown }) {
    super(
      'ERR_PYVENT_MISSING_DEPENDENCY',
      `The URL ${url} needs the npm package "${packageName}", which is not installed: run \`npm install ${packageName}\`.`,
      options
    )
    this.name = 'MissingDependencyError'
    this.packageName = packageName
  }
}

/**
 * The connection to a Redis or NATS server broke, or the server cut this node
 * off (a slow consumer): reported through the node's `error` event. The client
 * reconnects by itself; what was published to plain listeners meanwhile may be
 * lost (counted in `stats().disconnects` and `gaps`).
 */
export class ConnectionLostError extends PyventError {
  /** The engine: `'redis'` or `'nats'`. */
  readonly engine: string

  constructor(engine: string, message: string, options?: { cause?: unknown }) {
    super('ERR_PYVENT_CONNECTION_LOST', message, options)
    this.name = 'ConnectionLostError'
    this.engine = engine
  }
}

/**
 * Redis or NATS refused what a node sent (on Redis an error reply that sending
 * again would not change: out of memory, no permission, a read-only replica; on
 * NATS a publish the client refused), so pyvent gave it up: reported through the node's `error` event and counted in
 * `stats().unsent`. The events a node sends in one tick on one signal travel
 * together, so one error may stand for several (`count`).
 */
export class SendFailedError extends PyventError {
  /** The engine: `'redis'` or `'nats'`. */
  readonly engine: string
  /** How many events, requests or replies were given up. */
  readonly count: number

  constructor(engine: string, message: string, count: number, options?: { cause?: unknown }) {
    super('ERR_PYVENT_SEND_FAILED', message, options)
    this.name = 'SendFailedError'
    this.engine = engine
    this.count = count
  }
}
