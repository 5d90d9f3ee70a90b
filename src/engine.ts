/**
 * What a node needs from a transport (an "engine"): a connection for each
 * start-to-stop life of the node, optionally a relay it can host, and an
 * explanation when nothing answers. The ZeroMQ relay (src/zmq/) is the first
 * engine, Redis (src/redis/) and NATS (src/nats/) the others; the facade
 * (node.ts) sees only these types.
 *
 * @module
 */
import type { EventEmitter } from 'node:events'
import type { EventMessage, GroupState, ReplyMessage } from './codec'
import type { ResolvedOptions } from './options'
import type { GapTracker } from './sequence'

/** Counters of a node's connections (they add up over its restarts). */
export interface ClientStats {
  /** Events queued by `send` (and requests). */
  sent: number
  /** Events received (payloads of event messages, whether or not a listener matched). */
  received: number
  /** Messages that were not valid pyvent messages, dropped. */
  malformed: number
  /** Events missing from a sender's sequence that never arrived (lost upstream, for example by a drop-mode relay). */
  gaps: number
  /** Events whose sequence number had already arrived. */
  duplicates: number
  /**
   * Times the connection to a Redis or NATS server broke and was made again
   * (what was published to plain listeners meanwhile may be lost; `gaps`
   * counts what went missing). Always 0 on the relay, whose sockets reconnect
   * without losing their queues.
   */
  disconnects: number
  /** Durable work-group events this node moved to the dead-letter store after `maxDeliveries` attempts. */
  deadLettered: number
  /**
   * Events, requests and replies this node gave up sending (Redis and NATS):
   * the server refused them (each refusal also reported as `SendFailedError` on the
   * `error` event), or the node stopped before the server took them (`stop()` then
   * resolves `false`).
   */
  unsent: number
}

/** A fresh set of counters. */
export function emptyClientStats(): ClientStats {
  return { sent: 0, received: 0, malformed: 0, gaps: 0, duplicates: 0, disconnects: 0, deadLettered: 0, unsent: 0 }
}

/** What a node keeps across its connections: sequence numbers, counters, gap tracking. */
export interface WireState {
  seqs: Map<string, number>
  stats: ClientStats
  gaps: GapTracker
}

/** Resolved options of a durable work group (see `ListenOptions.durable`). */
export interface DurableSettings {
  /** Where a group new to the engine starts reading: events sent from now on, or everything still stored. */
  from: 'now' | 'start'
  /** A member's unfinished event is handed to another member after this many milliseconds. */
  claimAfter: number
  /** Attempts per event before it goes to the dead-letter store. */
  maxDeliveries: number
}

/** This node's membership of one work group, as the facade tells its connection. */
export interface Membership extends GroupState {
  /** The member topic (`$g[signal, group, node]`): the group's events for this node arrive with it as their `topic`. */
  topic: string
  signal: string
  group: string
  /** Set for a durable group (engines with storage only). */
  durable: DurableSettings | undefined
}

/** A durable group's event that failed `maxDeliveries` times, from {@link Connection.deadLetters}. */
export interface DeadLetter {
  /** The event's id (the same on every delivery). */
  id: string
  signal: string
  group: string
  sender: string
  /** The sending node's id. */
  node: string
  seq: number
  /** When the sender sent it, in milliseconds since the epoch. */
  timestamp: number
  payload: unknown
  /** How many times it was delivered. */
  deliveries: number
  /** The last handler error's message (`name: message`), or why it was given up without one (its member died each time). */
  error: string
  /** When it was moved to the dead-letter store, in milliseconds since the epoch. */
  deadAt: number
}

/** What a connection hands its node. */
export interface EngineHandlers {
  /**
   * An event batch, a request handed to one of this node's responders (kind
   * `q`), or a reply to one of its requests. A group member's events carry the
   * member topic as `topic` and the group as `group`.
   */
  message(message: EventMessage | ReplyMessage): void
  /** The relay engine: nothing came from the relay within the detection window. */
  suspect(): void
  /** Something the user should hear about that broke no call: a lost connection, a slow-consumer cut-off. */
  error(error: Error): void
  /** How many listeners, waits, requests and responders need receiving now. */
  demand(): number
}

/** One start-to-stop connection of a node to its engine. */
export interface Connection {
  /** Receives the events of `signal` (`''`: every signal). Called once per signal while it has listeners. */
  listen(signal: string): void
  unlisten(signal: string): void
  /** This node has responders of `signal`: requests for it may be handed here. */
  serve(signal: string): void
  unserve(signal: string): void
  /** Queues one encoded event payload. Resolves at once while the queue is short; when full, once it drained (backpressure). */
  publish(signal: string, sender: string, json: string): Promise<void>
  /** Sends a request; its reply (or a "no responders" reply) comes back through {@link EngineHandlers.message}. */
  request(signal: string, sender: string, json: string, id: string): void
  /** Answers request `request` of node `node` (`json`: the value, or `{name, message}` when `ok` is false). */
  reply(node: string, request: string, ok: boolean, json: string): void
  /** Joins a work group, or updates this member's capacity. */
  joinGroup(membership: Membership): void
  /**
   * One of the group's events is finished (`membership.done` already counts it).
   * `receipt` is the message's `receipts` entry for it, `error` what its
   * listener threw or rejected with (`undefined` on success).
   */
  finished(membership: Membership, receipt: string | undefined, error: unknown): void
  leaveGroup(membership: Membership): void
  /** The newest dead letters of a durable group (engines with storage only). */
  deadLetters?(signal: string, group: string, count: number): Promise<DeadLetter[]>
  /** Proves a round trip: every subscription made and everything queued before it reached the far side. */
  probe(timeout: number): Promise<boolean>
  /**
   * Why something this node registered cannot work on this server, though the
   * server answers (a durable group on NATS without JetStream): `ready()`
   * rejects with it. Sending and other listeners are not affected.
   */
  unsupported?(): Error | undefined
  /** Starts receiving if something needs it. */
  startReceiving(): void
  /** Whether something was queued that no probe has proved forwarded. */
  readonly unflushed: boolean
  readonly unflushedCount: number
  /** The largest body this node may send now. */
  readonly maxPayloadBytes: number
  /** Closes; with `flushed` false, drops what is queued at once. */
  close(flushed: boolean): void | Promise<void>
}

/** Counters of a hosted relay (engine-specific fields). */
export type RelayCounters = object

/** A relay a node may host. Emits `'lost'` when it ends unasked. */
export interface RelayHosting<Stats extends RelayCounters = RelayCounters> extends EventEmitter {
  start(options: ResolvedOptions, hold: number): Promise<boolean>
  stop(): Promise<void>
  /** Lets the relay go on without this node: it serves whoever still uses it, then ends by itself. */
  release(): void
  stats(): Promise<Stats | undefined>
  readonly running: boolean
}

/** A transport. */
export interface Engine<Stats extends RelayCounters = RelayCounters> {
  /** `'relay'`, `'redis'` or `'nats'`. */
  readonly name: string
  /** Whether work groups may be durable (the engine stores events). */
  readonly durable: boolean
  connect(options: ResolvedOptions, node: string, state: WireState, handlers: EngineHandlers): Connection
  /** A relay this node may host, for engines that have one. */
  relay(): RelayHosting<Stats> | undefined
  /** What failed to answer, for `RelayUnreachableError`'s message "No <this> within n ms.": "pyvent relay answered at 127.0.0.1:50020". */
  describe(options: ResolvedOptions): string
  /** Why nothing answered, in one sentence saying what to do. */
  diagnose(options: ResolvedOptions): Promise<string>
}
