/**
 * Gap counting: which events of a sender's (node, signal) stream never
 * arrived. Pure bookkeeping, no sockets.
 *
 * @module
 */

/** Most (node, signal) streams tracked; past this, tracking starts afresh. */
const MAX_TRACKED_STREAMS = 10_000
/** Most separate holes remembered per stream; an older hole stays counted as lost. */
const MAX_HOLES = 64

interface Stream {
  /** One past the highest sequence number seen. */
  next: number
  /** Ranges `[from, to)` below `next` that have not arrived (counted in `gaps`), oldest first. */
  holes: [number, number][]
}

/** Counts events missing from each sender's stream, and repeated ones (not part of the public API). */
export class GapTracker {
  /** Events that have not arrived although later ones of their stream have. */
  gaps = 0
  /** Events whose sequence number had already arrived. */
  duplicates = 0
  readonly #streams = new Map<string, Map<string, Stream>>()

  /**
   * Records a batch of `count` events numbered from `seq` in `node`'s stream of
   * `signal`. A batch that fills a hole takes its events off `gaps` again: only
   * events that never arrived stay counted.
   */
  record(signal: string, node: string, seq: number, count: number): void {
    let streams = this.#streams.get(signal)
    if (streams === undefined) {
      if (this.#streams.size >= MAX_TRACKED_STREAMS) this.#streams.clear()
      streams = new Map()
      this.#streams.set(signal, streams)
    }
    const end = seq + count
    const stream = streams.get(node)
    if (stream === undefined) {
      if (streams.size >= MAX_TRACKED_STREAMS) streams.clear()
      streams.set(node, { next: end, holes: [] })
      return
    }
    if (seq >= stream.next) {
      if (seq > stream.next) {
        this.gaps += seq - stream.next
        stream.holes.push([stream.next, seq])
        if (stream.holes.length > MAX_HOLES) stream.holes.shift()
      }
      stream.next = end
      return
    }
    // Below the highest seen: late (fills a hole) or repeated.
    let filled = 0
    const holes: [number, number][] = []
    for (const [from, to] of stream.holes) {
      const a = Math.max(from, seq)
      const b = Math.min(to, end)
      if (a >= b) {
        holes.push([from, to])
        continue
      }
      filled += b - a
      if (from < a) holes.push([from, a])
      if (b < to) holes.push([b, to])
    }
    stream.holes = holes
    this.gaps -= filled
    this.duplicates += Math.min(end, stream.next) - seq - filled
    if (end > stream.next) stream.next = end
  }

  /** Forgets the streams of `signal` (all streams when omitted), as after an unsubscription. */
  forget(signal?: string): void {
    if (signal === undefined) this.#streams.clear()
    else this.#streams.delete(signal)
  }
}
