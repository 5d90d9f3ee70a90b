/**
 * Where a lossless relay keeps what a full listener queue refused, so that one
 * slow listener holds back only the senders of what it listens to.
 *
 * ZeroMQ's no-drop publisher refuses a message when any of its subscribers'
 * queues is full, and takes it again once that queue has room. Instead of
 * retrying the refused message while everything behind it waits, the relay
 * parks it, in a queue of its own sending node, and goes on reading: later
 * messages of a node with parked messages are parked behind them (a node's
 * order is kept, across signals too), the others are published at once.
 * Parked messages are tried again, oldest queue first, as listeners drain.
 *
 * A node whose queue reaches {@link HOLD_AT} messages is told to hold its
 * sending (a flow message on its reply topic, renewed on every heartbeat while
 * it lasts, so a node that missed the "go on" waits out one hold at most), and
 * told to go on once the queue is down to {@link RELEASE_AT}. Nodes that do not
 * hold (another implementation of the protocol) are bounded by the relay,
 * which stops reading altogether while {@link MAX_PARKED} messages are parked.
 *
 * @module
 */
import createDebug from 'debug'
import { encodeFlow, Frames } from '../codec'
import { replyTopic, topicKind, TopicKind } from '../topics'

const debug = createDebug('pyvent:relay')

/** Parked messages of one node at which it is told to hold. */
export const HOLD_AT = 32
/** Parked messages of a held node at which it is told to go on. */
export const RELEASE_AT = 8
/** Parked messages in all at which the relay stops reading until half have gone. */
export const MAX_PARKED = 512
/** Longest pause between two attempts to publish parked messages, in milliseconds. */
const MAX_RETRY_WAIT = 10
/** The key of the relay's own heartbeats: tried first, so a slow listener does not silence the relay. */
export const HEARTBEAT_KEY = '$h'

/** The outcome of one attempt to publish. */
export type Attempt = 'sent' | 'full' | 'failed'

/** What the parking lot needs from its relay. */
export interface ParkingHooks {
  /** One attempt to publish, made inside the relay's send chain. */
  attempt(frames: Frames): Promise<Attempt>
  /** Runs `task` in the relay's send chain (one send at a time per socket). */
  chain(task: () => Promise<unknown>): void
  /** A parked message was published: `counted` says whether it counts as forwarded. */
  published(counted: boolean): void
  /** How long a hold lasts unless renewed, in milliseconds. */
  holdFor: number
}

interface Parked {
  frames: Frames
  counted: boolean
}

/**
 * The queue a message waits in when it must wait: its sending node's (read from
 * the header of an event, a request or a group share, or from a probe's topic),
 * else its topic's (replies and the relay's own messages).
 */
export function parkingKey(frames: Frames): string {
  const topic = frames[0] as Buffer
  const kind = topicKind(topic)
  if (kind === TopicKind.heartbeat) return HEARTBEAT_KEY
  if (kind === TopicKind.probe) {
    // $p.<node>.<count>
    const name = topic.toString('utf8', 3, topic.length - 1)
    return name.slice(0, name.lastIndexOf('.'))
  }
  if (kind === 0 || kind === TopicKind.group || kind === TopicKind.responder) {
    const header = frames[1] as Buffer | string
    const text = typeof header === 'string' ? header : header.toString('utf8')
    const node = nodeOf(text)
    if (node !== undefined && node.length > 0 && !node.startsWith('$')) return node
  }
  return '$' + topic.toString('latin1')
}

/**
 * The header's `n`. Found without parsing where it can be: `"n":"` after `{` or
 * `,` can only be that key (a quote inside a JSON string is escaped), and a
 * node id holds no quote or backslash; anything else is parsed.
 */
function nodeOf(header: string): string | undefined {
  const at = header.indexOf('"n":"')
  if (at > 0 && (header[at - 1] === ',' || header[at - 1] === '{')) {
    const end = header.indexOf('"', at + 5)
    const node = end < 0 ? undefined : header.slice(at + 5, end)
    if (node !== undefined && !node.includes('\\')) return node
  }
  try {
    const n = (JSON.parse(header) as { n?: unknown }).n
    return typeof n === 'string' ? n : undefined
  } catch {
    // A malformed header: its listeners count it; it waits with its topic.
    return undefined
  }
}

/** The parked messages of a lossless relay, by sending node; see the module comment. */
export class ParkingLot {
  readonly #hooks: ParkingHooks
  /** Oldest queue first (a Map keeps insertion order; an emptied queue is deleted). */
  readonly #queues = new Map<string, Parked[]>()
  /** Nodes told to hold. */
  readonly #held = new Set<string>()
  #size = 0
  #retryWait = 0
  #retryTimer: NodeJS.Timeout | NodeJS.Immediate | undefined
  /** Who waits for the lot to empty (stop) or to fall below half of MAX_PARKED (the reading loop). */
  #waiters: [limit: number, resolve: () => void][] = []
  #closed = false

  constructor(hooks: ParkingHooks) {
    this.#hooks = hooks
  }

  /** Messages parked now. */
  get size(): number {
    return this.#size
  }

  /** Nodes told to hold now. */
  get held(): number {
    return this.#held.size
  }

  /** Whether messages of `key` wait, so that the next one must wait behind them. */
  has(key: string): boolean {
    return this.#queues.has(key)
  }

  /** Parks a message the publisher refused (or one behind a parked message of its node). Runs in the send chain. */
  async park(key: string, frames: Frames, counted: boolean): Promise<void> {
    let queue = this.#queues.get(key)
    if (queue === undefined) this.#queues.set(key, (queue = []))
    queue.push({ frames, counted })
    this.#size++
    if (queue.length >= HOLD_AT && !key.startsWith('$') && !this.#held.has(key)) {
      this.#held.add(key)
      debug('holds node %s: %d of its messages wait for a slow listener', key, queue.length)
      await this.#flow(key, this.#hooks.holdFor)
    }
    this.#schedule()
  }

  /** Resolves once fewer than `limit` messages are parked (at once if so already). */
  below(limit: number): Promise<void> {
    if (this.#size < limit || this.#closed) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push([limit, resolve]))
  }

  /** Tells every held node again to hold (a hold lasts holdFor ms unless renewed). Runs in the send chain. */
  async renew(): Promise<void> {
    for (const node of this.#held) await this.#flow(node, this.#hooks.holdFor)
  }

  /** Stops retrying; returns how many parked messages are given up. */
  close(): number {
    this.#closed = true
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer as NodeJS.Timeout)
      clearImmediate(this.#retryTimer as NodeJS.Immediate)
    }
    const dropped = this.#size
    this.#queues.clear()
    this.#size = 0
    this.#wake()
    return dropped
  }

  #schedule(): void {
    if (this.#retryTimer !== undefined || this.#closed || this.#size === 0) return
    const run = (): void => {
      this.#retryTimer = undefined
      this.#hooks.chain(() => this.#retry())
    }
    this.#retryTimer = this.#retryWait === 0 ? setImmediate(run) : setTimeout(run, this.#retryWait)
  }

  /** One pass over the parked queues: the heartbeat first, then oldest queue first, each as far as the publisher takes it. */
  async #retry(): Promise<void> {
    let progressed = false
    const beat = this.#queues.get(HEARTBEAT_KEY)
    const order = beat === undefined ? [...this.#queues] : [[HEARTBEAT_KEY, beat] as const, ...[...this.#queues].filter(([key]) => key !== HEARTBEAT_KEY)]
    for (const [key, queue] of order) {
      if (this.#closed) return
      while (queue.length > 0) {
        const next = queue[0] as Parked
        const outcome = await this.#hooks.attempt(next.frames)
        if (outcome === 'full') break
        queue.shift()
        this.#size--
        progressed = true
        if (outcome === 'sent') this.#hooks.published(next.counted)
      }
      if (queue.length === 0) this.#queues.delete(key)
      if (queue.length <= RELEASE_AT && this.#held.delete(key)) {
        debug('lets node %s go on', key)
        await this.#flow(key, 0)
      }
    }
    this.#retryWait = progressed ? 0 : Math.min(Math.max(1, this.#retryWait * 2), MAX_RETRY_WAIT)
    this.#wake()
    this.#schedule()
  }

  /** A flow message to `node`: one attempt, never parked (it is renewed anyway). */
  async #flow(node: string, hold: number): Promise<void> {
    if ((await this.#hooks.attempt(encodeFlow(replyTopic(node), hold))) !== 'sent') debug('could not tell node %s to %s now', node, hold > 0 ? 'hold' : 'go on')
  }

  #wake(): void {
    if (this.#waiters.length === 0) return
    this.#waiters = this.#waiters.filter(([limit, resolve]) => (this.#size < limit || this.#closed ? (resolve(), false) : true))
  }
}
