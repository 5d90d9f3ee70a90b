/**
 * A durable work group on Redis Streams. While a durable group exists, the
 * sender's script adds every event of the signal to the signal's stream
 * (`pyvent:s:<signal>`, trimmed to about `maxStreamLength` entries); the group
 * is a Redis consumer group on it and this node one consumer (its node id).
 * A dedicated blocking connection reads with `XREADGROUP ... COUNT <room>`, so
 * the member never holds more than its `concurrency`; an entry is acknowledged
 * (`XACK`) only once its handler succeeded. A failed entry keeps its error in
 * the group's error hash and stays pending; every `claimAfter / 2` each member
 * claims (`XAUTOCLAIM`) entries pending longer than `claimAfter`, whoever held
 * them, and one delivered `maxDeliveries` times goes to the group's dead-letter
 * stream instead (scripts.ts, CLAIM).
 *
 * @module
 */
import createDebug from 'debug'
import type { DeadLetter, DurableSettings, Membership } from '../engine'
import { PyventEvent } from '../dispatcher'
import type { MemberContext } from './groups'
import type { Link } from './link'
import { CLAIM } from './scripts'
import { deadKey, decodeEvent, errorsKey, groupId, streamKey, WireEvent } from './wire'

const debug = createDebug('pyvent:redis:durable')

/** How long one XREADGROUP blocks (a leave or a close does not wait for it: it destroys the connection). */
const BLOCK_MS = 5000
/** Pause after a failed read (the connection is down: the link is making a new one). */
const RETRY_MS = 50

/** What a durable member needs beyond a plain one's. */
export interface DurableContext extends MemberContext {
  /** A connection of its own, for blocking reads. */
  link(): Link
  /** The node id: this member's consumer name. */
  readonly consumer: string
  readonly maxStreamLength: number
  deadLettered(count: number): void
}

type Entry = [id: string, fields: string[]]

/** Consecutive entries of one sender's batch, delivered as one message. */
interface Run {
  event: WireEvent
  ids: string[]
}

/** The error of a failed handler as the dead-letter store keeps it. */
function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return String(error)
}

/** One durable membership of this node. */
export class DurableMember {
  membership: Membership
  readonly #context: DurableContext
  readonly #settings: DurableSettings
  readonly #stream: string
  readonly #errors: string
  readonly #dead: string
  readonly #reader: Link
  /** Entry ids handed to the node and not finished yet. */
  readonly #inHand = new Set<string>()
  /** Entries delivered more than once: their stored error is removed when they succeed. */
  readonly #retried = new Set<string>()
  #acks: string[] = []
  /**
   * Entries this member owns but has no room for yet: a read or a claim that
   * came back while the other filled the room. Handed out as room frees, so the
   * member never holds more than its concurrency.
   */
  #backlog: [id: string, fields: string[] | null, deliveries: number][] = []
  #wake: (() => void) | undefined
  readonly #timer: NodeJS.Timeout
  #claiming = false
  #left = false

  constructor(context: DurableContext, membership: Membership) {
    this.#context = context
    this.membership = membership
    this.#settings = membership.durable as DurableSettings
    const id = groupId(membership.signal, membership.group)
    this.#stream = streamKey(membership.signal)
    this.#errors = errorsKey(id)
    this.#dead = deadKey(id)
    this.#reader = context.link()
    const created = this.#create()
    context.track(created)
    void created.then(() => this.#read())
    this.#timer = setInterval(() => void this.#claim(), Math.max(5, Math.floor(this.#settings.claimAfter / 2)))
    this.#timer.unref()
  }

  /** Creates the consumer group (and the stream): from now, or from the stream's start. A group that exists goes on where it was. */
  async #create(): Promise<void> {
    const start = this.#settings.from === 'now' ? '$' : '0'
    try {
      await this.#context.outbox.ask(['XGROUP', 'CREATE', this.#stream, this.membership.group, start, 'MKSTREAM'])
    } catch (error) {
      if (!String((error as Error).message).startsWith('BUSYGROUP')) debug('XGROUP CREATE failed: %s', (error as Error).message)
    }
  }

  update(membership: Membership): void {
    this.membership = membership
    this.#drain()
    this.#wakeReader()
  }

  /** The handler of entry `receipt` finished: acknowledged on success; on failure its error is kept for whoever claims it next. */
  finished(receipt: string | undefined, error: unknown): void {
    if (receipt === undefined || !this.#inHand.delete(receipt)) return
    if (error === undefined) {
      if (this.#acks.length === 0) setImmediate(this.#flushAcks)
      this.#acks.push(receipt)
    } else {
      void this.#context.outbox.command(['HSET', this.#errors, receipt, describe(error)])
    }
    this.#drain()
    this.#wakeReader()
  }

  /** Hands out owned entries waiting for room. */
  #drain(): void {
    while (this.#room > 0 && this.#backlog.length > 0 && !this.#left) {
      const [id, fields, deliveries] = this.#backlog.shift()!
      if (!this.#inHand.has(id)) this.#deliver(id, fields, deliveries)
    }
  }

  /** One XACK per tick for every entry finished in it. */
  readonly #flushAcks = (): void => {
    const acks = this.#acks
    this.#acks = []
    if (acks.length === 0) return
    void this.#context.outbox.command(['XACK', this.#stream, this.membership.group, ...acks])
    const retried = acks.filter((id) => this.#retried.delete(id))
    if (retried.length > 0) void this.#context.outbox.command(['HDEL', this.#errors, ...retried])
  }

  leave(): void {
    this.#left = true
    // What waited for room stays pending at Redis, for another member to claim.
    this.#backlog = []
    clearInterval(this.#timer)
    this.#flushAcks()
    this.#wakeReader()
    void this.#reader.close(false)
  }

  #wakeReader(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  get #room(): number {
    return this.membership.capacity - this.#inHand.size
  }

  async #read(): Promise<void> {
    const { group } = this.membership
    while (!this.#left) {
      this.#drain()
      if (this.#room <= 0 || this.#backlog.length > 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve))
        continue
      }
      let reply: unknown
      try {
        reply = await this.#reader.client.sendCommand(['XREADGROUP', 'GROUP', group, this.#context.consumer, 'COUNT', String(this.#room), 'BLOCK', String(BLOCK_MS), 'STREAMS', this.#stream, '>'])
      } catch (error) {
        if (this.#left) return
        const message = String((error as Error).message)
        debug('read failed: %s', message)
        // The stream or its group was deleted (or the server restarted without them): make them again.
        if (message.startsWith('NOGROUP')) await this.#create()
        else await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
        continue
      }
      if (!Array.isArray(reply) || this.#left) continue
      let run: Run | undefined
      for (const [, entries] of reply as [string, Entry[]][]) {
        for (const [id, fields] of entries) {
          if (this.#room <= 0) {
            this.#backlog.push([id, fields, 1])
            continue
          }
          const event = this.#take(id, fields, 1)
          if (event === undefined) continue
          // Entries that continue one sender's batch travel to the node as one message, as a batch does.
          const last = run?.event
          if (run !== undefined && last !== undefined && event.node === last.node && event.sender === last.sender && event.time === last.time && event.seq === last.seq + run.ids.length) {
            last.payloads.push(event.payloads[0])
            run.ids.push(id)
            continue
          }
          if (run !== undefined) this.#context.deliver(this.membership, run.event, run.ids)
          run = { event, ids: [id] }
        }
      }
      if (run !== undefined) this.#context.deliver(this.membership, run.event, run.ids)
    }
  }

  /** Reads entry `id` and counts it in hand, or acknowledges it as malformed. */
  #take(id: string, fields: string[] | null, deliveries: number): WireEvent | undefined {
    const index = fields?.indexOf('m') ?? -1
    const event = index >= 0 && index % 2 === 0 ? decodeEvent(String(fields?.[index + 1])) : undefined
    if (event === undefined || event.payloads.length !== 1) {
      // Nothing any member could handle: acknowledged, so it is not handed out again.
      this.#context.malformed()
      void this.#context.outbox.command(['XACK', this.#stream, this.membership.group, id])
      return undefined
    }
    this.#inHand.add(id)
    if (deliveries > 1) this.#retried.add(id)
    return event
  }

  #deliver(id: string, fields: string[] | null, deliveries: number): void {
    const event = this.#take(id, fields, deliveries)
    if (event !== undefined) this.#context.deliver(this.membership, event, [id], deliveries)
  }

  /** Takes over entries left unfinished for claimAfter; dead-letters those out of deliveries. */
  async #claim(): Promise<void> {
    if (this.#claiming || this.#left || this.#room <= 0) return
    this.#claiming = true
    try {
      const { group, capacity } = this.membership
      const { claimAfter, maxDeliveries } = this.#settings
      const reply = await this.#context.outbox.script(
        CLAIM,
        [this.#stream, this.#errors, this.#dead],
        [group, this.#context.consumer, String(claimAfter), String(Math.max(1, capacity - this.#inHand.size)), String(maxDeliveries), String(this.#context.maxStreamLength)]
      )
      if (!Array.isArray(reply) || this.#left) return
      const [dead, claimed] = reply as [number, [string, string[] | null, number][]]
      if (dead > 0) this.#context.deadLettered(dead)
      for (const [id, fields, deliveries] of claimed) {
        // Still running here (a slow handler): it stays with this member.
        if (this.#inHand.has(id)) continue
        if (this.#room > 0) this.#deliver(id, fields, deliveries)
        else this.#backlog.push([id, fields, deliveries])
      }
    } finally {
      this.#claiming = false
    }
  }
}

/** The newest `count` dead letters of a durable group, newest first. */
export async function readDeadLetters(ask: (args: string[]) => Promise<unknown>, signal: string, group: string, count: number): Promise<DeadLetter[]> {
  const reply = await ask(['XREVRANGE', deadKey(groupId(signal, group)), '+', '-', 'COUNT', String(count)])
  const letters: DeadLetter[] = []
  for (const [entryId, fields] of (Array.isArray(reply) ? reply : []) as Entry[]) {
    const values = new Map<string, string>()
    for (let i = 0; i + 1 < fields.length; i += 2) values.set(String(fields[i]), String(fields[i + 1]))
    const event = decodeEvent(values.get('m') ?? '')
    if (event === undefined) continue
    const payload = event.payloads[0]
    letters.push({
      id: new PyventEvent(signal, event.sender, payload, event.node, event.seq, event.time).id,
      signal,
      group,
      sender: event.sender,
      node: event.node,
      seq: event.seq,
      timestamp: event.time,
      payload,
      deliveries: Number(values.get('deliveries') ?? 0),
      error: values.get('error') ?? '',
      deadAt: Number(entryId.split('-')[0])
    })
  }
  return letters
}
