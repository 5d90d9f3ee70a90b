/**
 * A client's outbox: what a node sends, on its way to the socket. Events
 * queued in the same tick for the same signal and sender are coalesced into
 * one message (so per-message costs are paid per batch), numbered from the
 * node's sequence numbers, and held back (backpressure) when too much text
 * waits for the socket. The socket itself is the client's: the outbox hands it
 * frames through `send`.
 *
 * @module
 */
import createDebug from 'debug'
import { encodeEvents, Frames } from '../codec'
import type { ClientStats } from '../engine'
import { topicFrame } from '../topics'
import { StreamMarks } from './stream-marks'

const debug = createDebug('pyvent:client')

/** Most events coalesced into one message. */
export const MAX_BATCH_EVENTS = 1024
/**
 * Most payload text (UTF-16 units) coalesced into one message, when
 * maxMessageSize allows. 32 KiB carried 1.2x to 1.3x the events per second of
 * 16 KiB through a relay; 64 KiB more still, but then a slow listener's and a
 * sender's young generation doubled in a long burst (more of each batch
 * outlives a scavenge).
 */
const MAX_BATCH_CHARS = 32 * 1024
/**
 * Payload text (UTF-16 units) a client holds before the socket takes it; past
 * this, send() waits. Together with the socket high-water marks (in messages of
 * at most MAX_BATCH_CHARS) it bounds a sender's memory whatever the burst.
 */
const MAX_QUEUED_CHARS = 64 * 1024

const RESOLVED = Promise.resolve()

interface Batch {
  kind: 'e' | 'q'
  signal: string
  sender: string
  seq: number
  time: number
  request: string | undefined
  payloads: string[]
  /** Payload text plus one separator per payload, in UTF-16 units. */
  chars: number
}

/** What an outbox needs from its client. */
export interface OutboxConfig {
  /** The sending node's id, in every event header. */
  node: string
  /** Next sequence number per signal; owned by the node so it survives a restart. */
  seqs: Map<string, number>
  /** The node's counters (`sent`). */
  stats: ClientStats
  /** The largest body the node may send, in bytes (it sizes the batches). */
  maxPayloadBytes: number
  /** Hands one message to the socket; resolves once the socket took it. */
  send(frames: Frames): Promise<void>
  /**
   * Called after each message sent, and often while the relay holds the node:
   * the client reads what the relay said meanwhile (a hold, or "go on") when
   * nothing else is reading.
   */
  heard?(): void
}

/**
 * Longest a sending loop that awaits `send()` runs without a turn of the event
 * loop, in milliseconds. While the queue is short every `send()` settles at
 * once, so such a loop would never leave the microtask queue: the client's
 * pending receive would read the relay's "hold" only when the loop paused (the
 * relay parked hundreds of messages meanwhile), and the application's timers
 * would wait as long. Past this, `send()` settles after one turn instead. (The
 * outbox's own sending does not pause for it: what the application queued
 * meanwhile would outlive V8's young-generation collections, which then grow
 * the young generation.)
 */
export const MAX_BUSY_MS = 5
/** Events queued between two looks at the clock for {@link MAX_BUSY_MS}. */
const LOOK_EVERY = 64

/** Longest pause between two looks for the relay's "go on" while it holds the node. */
const MAX_HOLD_LOOK = 8

/** Batches, numbers and queues what a client sends; see the module comment. */
export class Outbox {
  readonly #node: string
  readonly #seqs: Map<string, number>
  readonly #stats: ClientStats
  readonly #send: (frames: Frames) => Promise<void>
  readonly #heard: () => void
  /** When the event loop last turned while this outbox was busy (Date.now()). */
  #turned = 0
  /** Events queued since the last look at the clock. */
  #sinceLook = 0
  /** Settles on the next turn of the event loop, while a send() waits for one. */
  #turn: Promise<void> | undefined
  /** Stream marks behind a relay in drop mode (stream-marks.ts). */
  readonly #marks: StreamMarks
  /** Until when (Date.now()) the relay holds this node's sending; 0 when it does not. */
  #heldUntil = 0
  /** Ends the current wait of a held outbox early (the relay said "go on"). */
  #release: (() => void) | undefined
  /** The batch still being filled this tick. */
  #open: Batch | undefined
  /** Sealed messages waiting for the socket, oldest first. */
  readonly #queue: (Batch | Frames)[] = []
  #flushing = false
  #sealScheduled = false
  #waiters: (() => void)[] = []
  /** Messages queued so far (probes and group reports not counted). */
  #queued = 0
  /** Payload text waiting in #open and #queue. */
  #queuedChars = 0
  /** Batch cap in UTF-16 units: a UTF-8 byte count is at most three times that, plus commas and brackets. */
  #batchChars: number
  #closed = false

  constructor({ node, seqs, stats, maxPayloadBytes, send, heard }: OutboxConfig) {
    this.#node = node
    this.#seqs = seqs
    this.#stats = stats
    this.#send = send
    this.#heard = heard ?? (() => undefined)
    this.#batchChars = batchChars(maxPayloadBytes)
    this.#marks = new StreamMarks({ node, seqs, enqueue: (frames) => this.enqueueFrames(frames, true) })
  }

  /** Messages queued so far (events, requests and replies; not probes or group reports). */
  get queued(): number {
    return this.#queued
  }

  /** Whether nothing waits to be handed to the socket (so a send now would be the only one in flight). */
  get idle(): boolean {
    return !this.#flushing && this.#queue.length === 0 && this.#open === undefined
  }

  /** Marks stream ends (stream-marks.ts) while the relay says it drops for slow listeners. */
  markStreams(on: boolean): void {
    this.#marks.on = on
  }

  /** Sizes the batches for bodies of at most `bytes` (when the relay says it takes less than the node). */
  setBodyLimit(bytes: number): void {
    this.#batchChars = batchChars(bytes)
  }

  /**
   * Queues one encoded payload. Resolves at once while the queue is short;
   * when it is full, resolves once it has drained (backpressure).
   */
  enqueue(kind: 'e' | 'q', signal: string, sender: string, json: string, request?: string): Promise<void> {
    if (this.#closed) return RESOLVED
    this.#stats.sent++
    this.#queued++
    this.#queuedChars += json.length
    const seq = this.#seqs.get(signal) ?? 0
    this.#seqs.set(signal, seq + 1)
    if (kind === 'e' && this.#marks.on) this.#marks.sent(signal, sender)
    const open = this.#open
    if (
      open !== undefined &&
      kind === 'e' &&
      open.kind === 'e' &&
      open.signal === signal &&
      open.sender === sender &&
      open.payloads.length < MAX_BATCH_EVENTS &&
      open.chars + json.length + 1 <= this.#batchChars
    ) {
      open.payloads.push(json)
      open.chars += json.length + 1
    } else {
      if (open !== undefined) this.#seal()
      this.#open = { kind, signal, sender, seq, time: Date.now(), request, payloads: [json], chars: json.length + 1 }
      if (kind === 'q') this.#seal()
      else if (!this.#sealScheduled) {
        this.#sealScheduled = true
        setImmediate(this.#sealTick)
      }
    }
    if (this.#queuedChars >= MAX_QUEUED_CHARS) return new Promise((resolve) => this.#waiters.push(resolve))
    if (++this.#sinceLook < LOOK_EVERY) return RESOLVED
    this.#sinceLook = 0
    return Date.now() - this.#turned < MAX_BUSY_MS ? RESOLVED : this.#nextTurn()
  }

  /** A promise that settles on the next turn of the event loop (one for every caller until then). */
  #nextTurn(): Promise<void> {
    this.#turn ??= new Promise((resolve) =>
      setImmediate(() => {
        this.#turned = Date.now()
        this.#turn = undefined
        resolve()
      })
    )
    return this.#turn
  }

  /** Queues ready-made frames (replies, probes, group reports) behind everything queued before. */
  enqueueFrames(frames: Frames, control = false): void {
    if (this.#closed) return
    if (!control) this.#queued++
    if (this.#open !== undefined) this.#seal()
    this.#queue.push(frames)
    void this.#flush()
  }

  /**
   * The relay's flow control: it holds more of this node's messages than it can
   * pass on (a listener of theirs is slow), so stop sending for `ms`
   * milliseconds, or until it says "go on" (`ms` 0). What is queued meanwhile
   * waits here, and send() waits once the queue is full, as for a full socket.
   */
  hold(ms: number): void {
    if (ms > 0) {
      if (this.#heldUntil === 0) debug('the relay holds this node for up to %d ms', ms)
      this.#heldUntil = Date.now() + ms
      return
    }
    if (this.#heldUntil !== 0) debug('the relay lets this node go on')
    this.#heldUntil = 0
    this.#release?.()
  }

  /** Drops what is queued and releases every send() waiting for room. */
  close(): void {
    this.#closed = true
    this.#marks.close()
    this.#release?.()
    this.#wake()
  }

  /** Waits while the relay holds this node, looking for its "go on" every few milliseconds. */
  async #whileHeld(): Promise<void> {
    for (let look = 1; this.#heldUntil !== 0 && !this.#closed; look = Math.min(look * 2, MAX_HOLD_LOOK)) {
      const left = this.#heldUntil - Date.now()
      if (left <= 0) {
        this.#heldUntil = 0
        break
      }
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.#release = resolve
        timer = setTimeout(resolve, Math.min(look, left))
      })
      clearTimeout(timer)
      this.#release = undefined
      this.#heard()
    }
  }

  readonly #sealTick = (): void => {
    // An immediate runs once per turn of the event loop.
    this.#turned = Date.now()
    this.#sealScheduled = false
    if (this.#open !== undefined) this.#seal()
  }

  #seal(): void {
    const open = this.#open
    if (open === undefined) return
    this.#open = undefined
    this.#queue.push(open)
    void this.#flush()
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return
    this.#flushing = true
    const queue = this.#queue
    try {
      while (queue.length > 0 && !this.#closed) {
        if (this.#heldUntil !== 0) {
          await this.#whileHeld()
          continue
        }
        const item = queue[0] as Batch | Frames
        await this.#send(Array.isArray(item) ? item : encodeEvents(topicFrame(item.signal), item, this.#node, item.payloads))
        this.#heard()
        if (!Array.isArray(item)) this.#queuedChars -= item.chars - item.payloads.length
        queue.shift()
        if (this.#waiters.length > 0 && this.#queuedChars < MAX_QUEUED_CHARS / 2) this.#wake()
      }
    } catch (error) {
      if (!this.#closed) debug('send failed: %s', (error as Error).message)
    } finally {
      this.#flushing = false
    }
    if (this.#waiters.length > 0 && (this.#queuedChars < MAX_QUEUED_CHARS / 2 || this.#closed)) this.#wake()
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve()
  }
}

/** The batch cap, in UTF-16 units, for bodies of at most `bytes`. */
function batchChars(bytes: number): number {
  return Math.min(MAX_BATCH_CHARS, Math.floor(bytes / 4))
}
