/**
 * The relay's types shared with the hosting side and the node: its counters
 * and what it needs to run.
 *
 * @module
 */
import type { ResolvedOptions } from '../options'

/** Counters of one relay. */
export interface RelayStats {
  /** The relay process's id (what `ps` lists as `pyvent-relay`). */
  pid: number
  /** Messages (batches) pulled from senders and published (heartbeats and group copies not counted). */
  forwarded: number
  /** Messages a socket error kept from being published (other than a full queue). */
  failed: number
  /** Times a full listener queue made a lossless relay wait before forwarding. */
  stalls: number
  /** Messages refused because they did not have the frame layout of a pyvent message. */
  malformed: number
  /** Connections refused because their CURVE key is not allowed (CURVE only). */
  refused: number
  /** Requests answered "no responders" by the relay itself. */
  noResponders: number
  /** Work-group events waiting for a member with room. */
  groupWaiting: number
  /**
   * Work-group events lost: taken by a member that left or died before finishing
   * them (at most its `concurrency` each), or waiting in a group whose last member left.
   */
  groupLost: number
  /** Distinct topics subscribed at the relay right now. */
  topics: number
  /** Messages parked now because a slow listener's queue was full (lossless mode; see parking.ts). */
  parked: number
  /** Sending nodes told now to hold until the messages parked for them drain. */
  held: number
}

/** What the relay needs to run. */
export interface RelayConfig {
  options: ResolvedOptions
  /** Milliseconds to wait after binding before forwarding: lets clients of a dead relay resubscribe first. */
  hold: number
}
