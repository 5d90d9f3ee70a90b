/**
 * A client's readiness probes: each one subscribes to a fresh probe topic and
 * sends a probe to it through the relay until it comes back. Because
 * subscriptions travel in order on one connection, a returning probe proves
 * every earlier subscription is live at the relay; because it is queued behind
 * every earlier message, it proves those were forwarded too.
 *
 * @module
 */
import { encodeControl, Frames } from '../codec'
import { probeTopic } from '../topics'

/** Longest pause between two probes of one readiness check. */
const MAX_PROBE_INTERVAL = 200

/** What the probes need from their client. */
export interface ProbeConfig {
  /** The node's id, in every probe topic. */
  node: string
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  /** Queues a probe behind everything queued so far. */
  send(frames: Frames): void
  /**
   * Sends a background probe only if that cannot leave a send pending (nothing
   * else queued, and the socket takes it at once): a send waiting for a dead
   * relay's full queue would keep the process alive (the attempt is then skipped).
   */
  trySend(frames: Frames): void
  /** Messages the client has queued so far (what a returning probe proves forwarded). */
  queued(): number
  /** Makes sure the receive loop runs, so the probe can come back. */
  listen(): void
  /** Reads what already waits on the subscriber, without a receive left pending (a background probe's answer). */
  look(): void
  closed(): boolean
}

/** The probes of one client; see the module comment. */
export class Probes {
  readonly #config: ProbeConfig
  /** Probes waiting to come back, by topic, oldest first (Map keeps insertion order). */
  readonly #waiting = new Map<string, () => void>()
  /** Wakes every probe sleeping between two attempts (on close). */
  readonly #wakers = new Set<() => void>()
  #count = 0
  #forwarded = 0
  /** Background probes among the waiting ones: they keep no receive loop running. */
  #background = 0

  /** How many of the messages queued a returned probe (or a reply, see {@link proved}) proved forwarded. */
  get forwarded(): number {
    return this.#forwarded
  }

  /** Something came back through the relay behind the first `mark` messages queued: they were forwarded. */
  proved(mark: number): void {
    if (mark > this.#forwarded) this.#forwarded = mark
  }

  constructor(config: ProbeConfig) {
    this.#config = config
  }

  /** Probes waiting to come back that need the receive loop (background ones do not). */
  get size(): number {
    return this.#waiting.size - this.#background
  }

  /**
   * @param background Never holds the process: its timers are unref'd, and
   *   instead of a receive loop (whose pending receive would keep the process
   *   alive) it looks for its answer after each attempt. A process that has
   *   nothing else to do ends meanwhile, as if the probe had not been sent.
   * @returns `true` if a probe came back within `timeout` milliseconds.
   */
  async probe(timeout: number, background = false): Promise<boolean> {
    const config = this.#config
    if (config.closed()) return false
    const topic = probeTopic(config.node, ++this.#count)
    const mark = config.queued()
    const frames = encodeControl('p', topic)
    let arrived = false
    let wake: (() => void) | undefined
    this.#waiting.set(topic, () => {
      arrived = true
      this.proved(mark)
      wake?.()
    })
    config.subscribe(topic)
    if (background) this.#background++
    else config.listen()
    const deadline = Date.now() + timeout
    let interval = 5
    try {
      while (!arrived && !config.closed()) {
        const left = deadline - Date.now()
        if (left <= 0) break
        if (background) config.trySend(frames)
        else config.send(frames)
        let timer: NodeJS.Timeout | undefined
        await new Promise<void>((resolve) => {
          wake = resolve
          this.#wakers.add(resolve)
          timer = setTimeout(resolve, Math.min(interval, left))
          if (background) timer.unref()
        })
        clearTimeout(timer)
        if (wake !== undefined) this.#wakers.delete(wake)
        if (background && !arrived) config.look()
        interval = Math.min(interval * 2, MAX_PROBE_INTERVAL)
      }
    } finally {
      if (background) this.#background--
      this.#waiting.delete(topic)
      config.unsubscribe(topic)
    }
    return arrived
  }

  /**
   * A probe came back on `topic`. It also proves every older probe's point
   * (their subscriptions were made earlier on the same connection): those settle too.
   */
  arrived(topic: string): void {
    if (!this.#waiting.has(topic)) return
    for (const [waiting, settle] of this.#waiting) {
      settle()
      if (waiting === topic) break
    }
  }

  /** Ends every wait between two attempts (the client closed). */
  close(): void {
    for (const wake of this.#wakers) wake()
  }
}
