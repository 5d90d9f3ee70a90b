/**
 * What a node needs from a transport (an "engine"): a connection for each
 * start-to-stop life of the node, optionally a relay it can host, and an
 * explanation when nothing answers. The ZeroMQ relay (src/zmq/) is the first
 * engine; the facade (node.ts) sees only these types.
 *
 * @module
 */
import type { EventEmitter } from 'node:events'
import type { EventMessage, Frames, GroupState, ReplyMessage } from './codec'
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
}

/** A fresh set of counters. */
export function emptyClientStats(): ClientStats {
  return { sent: 0, received: 0, malformed: 0, gaps: 0, duplicates: 0 }
}

/** What a node keeps across its connections: sequence numbers, counters, gap tracking. */
export interface WireState {
  seqs: Map<string, number>
  stats: ClientStats
  gaps: GapTracker
}

/** What a connection hands its node. */
export interface EngineHandlers {
  /** An event, request or reply arrived. */
  message(message: EventMessage | ReplyMessage): void
  /** Nothing came from the relay within the detection window. */
  suspect(): void
  /** How many listeners, waits, requests and responders need receiving now. */
  demand(): number
}

/** One start-to-stop connection of a node to its engine. */
export interface Connection {
  /** Subscribes to a topic (`''` for every topic). */
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  /** Queues one encoded payload (an event, or a request on its request topic); waits while the queue is full. */
  enqueue(kind: 'e' | 'q', topic: string, sender: string, json: string, request?: string): Promise<void>
  /** Queues ready-made frames (a reply) behind everything queued before. */
  enqueueFrames(frames: Frames): void
  /** Reports this node's room as a member of a work group. */
  reportGroup(state: GroupState): void
  leaveGroup(topic: string): void
  /** Proves a round trip: every subscription made and everything queued before it reached the far side. */
  probe(timeout: number): Promise<boolean>
  /** Starts receiving if something needs it. */
  startReceiving(): void
  /** Whether something was queued that no probe has proved forwarded. */
  readonly unflushed: boolean
  readonly unflushedCount: number
  /** The largest body this node may send now. */
  readonly maxPayloadBytes: number
  /** Closes; with `flushed` false, drops what is queued at once. */
  close(flushed: boolean): void
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
  connect(options: ResolvedOptions, node: string, state: WireState, handlers: EngineHandlers): Connection
  /** A relay this node may host. */
  relay(): RelayHosting<Stats>
  /** Why nothing answered, in one sentence saying what to do. */
  diagnose(options: ResolvedOptions): Promise<string>
}
