/**
 * A node's work-group reports: how much room it has as a member of each group
 * (its capacity, and how many events it has finished), told to the relay so
 * the relay deals it events only while it has room. See {@link GroupReports}.
 *
 * @module
 */
import createDebug from 'debug'
import type { XSubscriber } from 'zeromq'
import { encodeGroupState, Frames, GroupState } from '../codec'
import type { ResolvedOptions } from '../options'
import { GROUP_STATE_TOPIC, topicFrame } from '../topics'
import { endpoint, reportSocket, sendFrames } from './sockets'

const debug = createDebug('pyvent:client')

/** What group reports need from their client. */
export interface GroupReportsConfig {
  options: ResolvedOptions
  /** The client polls instead of leaving a send pending (a worker thread). */
  polling: boolean
  /** Queues frames on the data path, behind the events queued before (as a control message: not counted as sent). */
  enqueue(frames: Frames): void
}

/**
 * Tells the relay how much room this node has as a member of a work group.
 * Each report is sent twice: on the data path, where a later probe proves it
 * arrived, and upstream on a socket of its own, where it never waits behind
 * events (a relay holding back events for lack of room must still hear it);
 * and again every relayTimeout, so a new relay hears it too. Reports are
 * cumulative, so the relay takes the newest and ignores the rest, and one per
 * tick carries every event finished in it.
 */
export class GroupReports {
  readonly #options: ResolvedOptions
  readonly #polling: boolean
  readonly #enqueue: (frames: Frames) => void
  /** The latest report of each group this node is a member of (only the latest matters), by member topic. */
  readonly #states = new Map<string, GroupState>()
  /** Reports to send upstream. */
  readonly #dirty = new Set<string>()
  /** Reports to send on the data path at the end of this tick. */
  readonly #dataDirty = new Set<string>()
  #scheduled = false
  /** Carries reports upstream to the relay's publisher, never queued behind events. */
  #socket: XSubscriber | undefined
  #sending = false
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor({ options, polling, enqueue }: GroupReportsConfig) {
    this.#options = options
    this.#polling = polling
    this.#enqueue = enqueue
  }

  /** Whether this node reports for the member topic `topic` (it has joined that group). */
  has(topic: string): boolean {
    return this.#states.has(topic)
  }

  /** Reports `state`, the room of this node in one group (joining it, if it is the first report). */
  report(state: GroupState): void {
    if (this.#closed) return
    const joining = !this.#states.has(state.topic)
    this.#states.set(state.topic, { ...state })
    this.#dirty.add(state.topic)
    // On joining, at once behind everything queued on the data path: a readiness probe
    // sent after this proves the relay has it (the upstream socket may not be connected yet).
    if (joining) this.#enqueueReport(state.topic)
    else this.#dataDirty.add(state.topic)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#flush)
    }
    if (this.#socket === undefined) {
      this.#socket = reportSocket(this.#options, this.#polling)
      this.#socket.connect(endpoint(this.#options, 'pub'))
      this.#timer = setInterval(() => {
        for (const topic of this.#states.keys()) this.#dirty.add(topic)
        void this.#sendUpstream()
      }, this.#options.relayTimeout)
      this.#timer.unref()
    }
  }

  /** This node left a work group: no more reports for it. */
  forget(topic: string): void {
    this.#states.delete(topic)
    this.#dirty.delete(topic)
    this.#dataDirty.delete(topic)
  }

  /** Stops reporting and closes the upstream socket. */
  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
    this.#socket?.close()
  }

  readonly #flush = (): void => {
    this.#scheduled = false
    for (const topic of this.#dataDirty) this.#enqueueReport(topic)
    this.#dataDirty.clear()
    void this.#sendUpstream()
  }

  #enqueueReport(topic: string): void {
    const state = this.#states.get(topic)
    if (state !== undefined) this.#enqueue([topicFrame(GROUP_STATE_TOPIC), encodeGroupState(state), '[]'])
  }

  async #sendUpstream(): Promise<void> {
    const socket = this.#socket
    if (this.#sending || socket === undefined) return
    this.#sending = true
    try {
      for (const topic of this.#dirty) {
        this.#dirty.delete(topic)
        const state = this.#states.get(topic)
        if (state !== undefined) await sendFrames(socket, encodeGroupState(state), this.#polling, this.#isClosed)
      }
    } catch (error) {
      if (!this.#closed) debug('group report failed: %s', (error as Error).message)
    } finally {
      this.#sending = false
    }
  }

  readonly #isClosed = (): boolean => this.#closed
}
