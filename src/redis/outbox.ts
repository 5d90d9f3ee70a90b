/**
 * Everything a node sends to Redis, on its command connection and in order:
 * event batches (events queued in the same tick for the same signal and sender
 * travel as one script call), requests, replies and the group commands. It
 * counts what was queued and what Redis has answered, so `flush()` knows what
 * an exit could lose, and makes `send()` wait while too much is in flight.
 * What it gives up on is never silent: counted in `stats().unsent`, and, while
 * the node runs, reported as a {@link SendFailedError}.
 *
 * @module
 */
import createDebug from 'debug'
import type { ClientStats } from '../engine'
import { SendFailedError } from '../errors'
import type { Link } from './link'
import { REQUEST, run, Script, SEND } from './scripts'
import { eventChannel, eventHead, groupsKey, streamKey } from './wire'

const debug = createDebug('pyvent:redis:outbox')

/** Most events in one batch. */
const MAX_BATCH_EVENTS = 512
/** Most payload text (UTF-16 units) in one batch. */
const MAX_BATCH_CHARS = 32 * 1024
/** Payload text in flight (sent, not yet answered) past which `send()` waits. */
const MAX_INFLIGHT_CHARS = 256 * 1024

const RESOLVED = Promise.resolve()
/** First pause before sending again what a transient failure lost; it doubles up to MAX_RETRY_MS. */
const RETRY_MS = 20
const MAX_RETRY_MS = 500

/**
 * Whether a failure may pass: a broken, given-up or reset connection, or a
 * server busy loading (not a refusal of the command itself). A connection
 * closed by pyvent is not sent on again: the outbox is closed by then.
 */
function transient(error: unknown): boolean {
  const kind = (error as { constructor?: { name?: string } }).constructor?.name
  if (kind === 'SimpleError' || kind === 'BlobError' || kind === 'ErrorReply') return /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN)\b/.test(String((error as Error).message))
  return true
}

/** What SEND and REQUEST answer; anything else was another command's reply. */
const SCRIPT_REPLIES = new Map<Script, (reply: unknown) => boolean>([
  [SEND, (reply) => reply === 0 || reply === 1],
  [REQUEST, (reply) => reply === 0 || reply === 1]
])

function plural(count: number, one: string): string {
  return `${count} ${one}${count === 1 ? '' : 's'}`
}

interface Batch {
  signal: string
  sender: string
  seq: number
  time: number
  payloads: string[]
  chars: number
}

/** The sending half of a Redis connection. */
export class Outbox {
  readonly #link: Link
  readonly #node: string
  readonly #seqs: Map<string, number>
  readonly #stats: ClientStats
  readonly #maxStreamLength: string
  readonly #settledHook: () => void
  readonly #report: (error: Error) => void
  #open: Batch | undefined
  #sealScheduled = false
  #waiters: (() => void)[] = []
  /** Who waits for what was queued up to a mark to be answered. */
  #drains: [number, () => void][] = []
  #inflightChars = 0
  /** Commands sent and not yet answered. */
  inflight = 0
  /** Events, requests and replies queued, and how many of them Redis has answered (in order). */
  queued = 0
  settled = 0
  #closed = false

  /** `settled`: called whenever a command was answered. `report`: a {@link SendFailedError}, for the node's `error` event. */
  constructor(link: Link, node: string, seqs: Map<string, number>, stats: ClientStats, maxStreamLength: number, settled: () => void, report: (error: Error) => void) {
    this.#link = link
    this.#node = node
    this.#seqs = seqs
    this.#stats = stats
    this.#maxStreamLength = String(maxStreamLength)
    this.#settledHook = settled
    this.#report = report
  }

  /** Whether a batch is still being filled. */
  get filling(): boolean {
    return this.#open !== undefined
  }

  /** The next sequence number of `key` (a signal, or a request topic). */
  nextSeq(key: string, count = 1): number {
    const seq = this.#seqs.get(key) ?? 0
    this.#seqs.set(key, seq + count)
    return seq
  }

  /** Queues one event; resolves at once while little is in flight, else once it drained. */
  publish(signal: string, sender: string, json: string): Promise<void> {
    if (this.#closed) return RESOLVED
    this.#stats.sent++
    this.queued++
    this.#inflightChars += json.length
    const seq = this.nextSeq(signal)
    const open = this.#open
    if (open !== undefined && open.signal === signal && open.sender === sender && open.payloads.length < MAX_BATCH_EVENTS && open.chars + json.length <= MAX_BATCH_CHARS) {
      open.payloads.push(json)
      open.chars += json.length
    } else {
      if (open !== undefined) this.seal()
      this.#open = { signal, sender, seq, time: Date.now(), payloads: [json], chars: json.length }
      if (!this.#sealScheduled) {
        this.#sealScheduled = true
        setImmediate(this.#sealTick)
      }
    }
    if (this.#inflightChars < MAX_INFLIGHT_CHARS) return RESOLVED
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  readonly #sealTick = (): void => {
    this.#sealScheduled = false
    this.seal()
  }

  /** Sends the batch being filled, if any. */
  seal(): void {
    const batch = this.#open
    if (batch === undefined) return
    this.#open = undefined
    const keys = [eventChannel(batch.signal), streamKey(batch.signal), groupsKey(batch.signal)]
    const args = [eventHead(batch.sender, this.#node, batch.time), String(batch.seq), this.#maxStreamLength, ...batch.payloads]
    const count = batch.payloads.length
    void this.script(SEND, keys, args, count, batch.chars, `${plural(count, 'event')} of "${batch.signal}"`)
  }

  /**
   * Sends a command behind everything queued before it. `weight`: how many of
   * the user's events, requests or replies it carries (for `unflushed`), and
   * `what` names them for the error if it is given up. Never rejects: a
   * failure resolves `undefined` (and is logged; reported when `weight` > 0).
   */
  command(args: string[], weight = 0, what = String(args[0])): Promise<unknown> {
    return this.#track(() => this.#link.client.sendCommand(args), weight, 0, what)
  }

  /** Runs a script behind everything queued before it; see {@link command}. */
  script(script: Script, keys: string[], args: string[], weight = 0, chars = 0, what = 'a script'): Promise<unknown> {
    const valid = SCRIPT_REPLIES.get(script)
    return this.#track(
      async () => {
        const reply = await run(this.#link.client, script, keys, args)
        if (valid === undefined || valid(reply)) return reply
        // Not this script's reply: another command's, so this one may never have run.
        this.#link.reset()
        throw new Error(`a reply that is not the script's (${typeof reply}): the connection was out of step`)
      },
      weight,
      chars,
      what
    )
  }

  /** Like {@link command}, but rejects on failure. */
  ask(args: string[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('pyvent closed this Redis connection'))
    this.seal()
    this.inflight++
    return this.#link.client.sendCommand(args).finally(() => this.#done(0, 0))
  }

  /**
   * Sends, and sends again what the user queued (`weight` > 0) when the failure
   * was transient: a connection that broke (the command may have run: a plain
   * listener may then see an event twice, counted in `duplicates`; a durable
   * group must not lose it) or a server still loading its data after a restart.
   * What it gives up on is counted in `unsent`; a refusal is also reported.
   */
  async #track(send: () => Promise<unknown>, weight: number, chars: number, what: string): Promise<unknown> {
    if (this.#closed) return this.#unsent(weight)
    if (weight > 0 && chars === 0) this.queued += weight
    this.seal()
    this.inflight++
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await send()
        } catch (error) {
          debug('command failed: %s', (error as Error).message)
          if (weight === 0) return undefined
          // Stopped before Redis took it: stop() resolves false for it (its flush gave up).
          if (this.#closed) return this.#unsent(weight)
          if (!transient(error)) return this.#giveUp(error as Error, weight, what)
          await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MS * 2 ** attempt, MAX_RETRY_MS)))
          if (this.#closed) return this.#unsent(weight)
        }
      }
    } finally {
      this.#done(weight, chars)
    }
  }

  #unsent(weight: number): undefined {
    this.#stats.unsent += weight
    return undefined
  }

  #giveUp(error: Error, weight: number, what: string): undefined {
    this.#unsent(weight)
    this.#report(
      new SendFailedError(
        'redis',
        `Redis refused ${what} (${error.message}). pyvent does not send it again, and it may have reached ` +
          'no listener or group (the steps of its script before the refusal stand). Counted in stats().unsent.',
        weight,
        { cause: error }
      )
    )
    return undefined
  }

  /** Resolves once Redis has answered everything queued so far (or the outbox closed). */
  drained(): Promise<void> {
    const mark = this.queued
    if (this.settled >= mark || this.#closed) return RESOLVED
    return new Promise((resolve) => this.#drains.push([mark, resolve]))
  }

  #done(weight: number, chars: number): void {
    this.inflight--
    this.settled += weight
    this.#inflightChars -= chars
    if (this.#waiters.length > 0 && this.#inflightChars < MAX_INFLIGHT_CHARS / 2) this.#wake()
    if (this.#drains.length > 0) {
      this.#drains = this.#drains.filter(([mark, resolve]) => (this.settled >= mark ? (resolve(), false) : true))
    }
    this.#settledHook()
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve()
  }

  /** Stops queuing; with `flush`, sends the batch being filled first (else it counts in `unsent`). */
  close(flush: boolean): void {
    if (flush) this.seal()
    this.#stats.unsent += this.#open?.payloads.length ?? 0
    this.#open = undefined
    this.#closed = true
    this.#wake()
    for (const [, resolve] of this.#drains) resolve()
    this.#drains = []
  }
}
