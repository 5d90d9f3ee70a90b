/**
 * Stream marks, behind a relay that drops for slow listeners: a listener can
 * count a lost event only once a later message of its stream arrives, so the
 * end of a burst it missed would never be counted. A sender marks where each
 * stream it sent on stands, {@link MARK_AFTER} after it went quiet: an event
 * message with no payload, numbered with the stream's next sequence number
 * (PROTOCOL.md section 5).
 *
 * @module
 */
import { encodeEvents, Frames } from '../codec'
import { topicFrame } from '../topics'

/**
 * When a stream's end is marked: this many milliseconds after its node went
 * quiet, then again after each later step (a mark can be dropped too, while the
 * listener is still behind).
 */
export const MARK_AFTER = [100, 1000, 10_000] as const

/** What the marks need from their outbox. */
export interface StreamMarksConfig {
  /** The sending node's id. */
  node: string
  /** Next sequence number per signal (the node's). */
  seqs: Map<string, number>
  /** Queues a mark behind everything queued so far. */
  enqueue(frames: Frames): void
}

/** The stream marks of one outbox; see the module comment. */
export class StreamMarks {
  readonly #config: StreamMarksConfig
  /** Whether the relay drops for slow listeners, so stream ends are marked. */
  #on = false
  /** Signals sent on since their end was last marked, with the sender name of their last event. */
  readonly #unmarked = new Map<string, string>()
  /** Whether an event was queued since the timer was set. */
  #sentSinceTimer = false
  #step = 0
  #timer: NodeJS.Timeout | undefined

  constructor(config: StreamMarksConfig) {
    this.#config = config
  }

  /** Whether marks are sent (the relay said it drops). */
  get on(): boolean {
    return this.#on
  }

  set on(on: boolean) {
    if (on === this.#on) return
    this.#on = on
    if (!on) this.close()
  }

  /** An event was queued on `signal` by `sender` (call only while {@link on}). */
  sent(signal: string, sender: string): void {
    if (this.#unmarked.get(signal) !== sender) this.#unmarked.set(signal, sender)
    this.#sentSinceTimer = true
    if (this.#timer === undefined) {
      this.#step = 0
      this.#timer = setTimeout(this.#tick, MARK_AFTER[0]).unref()
    }
  }

  /** Stops marking: nothing more is sent. */
  close(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#unmarked.clear()
  }

  /** Marks every unmarked stream once its node has been quiet for the current step. */
  readonly #tick = (): void => {
    this.#timer = undefined
    if (!this.#on || this.#unmarked.size === 0) return
    if (this.#sentSinceTimer) {
      this.#sentSinceTimer = false
      this.#step = 0
    } else {
      const { node, seqs, enqueue } = this.#config
      const time = Date.now()
      for (const [signal, sender] of this.#unmarked) {
        enqueue(encodeEvents(topicFrame(signal), { kind: 'e', sender, seq: seqs.get(signal) ?? 0, time }, node, []))
      }
      if (++this.#step >= MARK_AFTER.length) {
        this.#unmarked.clear()
        return
      }
    }
    this.#timer = setTimeout(this.#tick, MARK_AFTER[this.#step]).unref()
  }
}
