/**
 * Work groups and responders as the relay knows them, learnt from the
 * subscriptions its publisher reports: a member subscribes to its own topic
 * (a group member's, or a responder's), and its subscription goes away when it
 * unsubscribes or its connection drops. Only topics are read, never payloads.
 *
 * @module
 */
import createDebug from 'debug'
import type { Frames, GroupState } from '../codec'
import { parseGroupTopic, parseResponderTopic, requestTopic, topicFrame } from '../topics'

const debug = createDebug('pyvent:relay')

/** Where a member topic belongs: the topic frame (latin1) of the messages it shares, and its group. */
type Classify = (topic: string) => [key: string, group: string] | undefined

/**
 * Members by the messages they share and by group (responders form one group
 * per signal). @internal
 */
export class MemberTable {
  /** Shared topic frame (latin1, NUL included) -> group -> members' topic frames. */
  readonly #bySignal = new Map<string, Map<string, { members: Buffer[]; next: number }>>()
  readonly #classify: Classify

  constructor(classify: Classify) {
    this.#classify = classify
  }

  get size(): number {
    return this.#bySignal.size
  }

  /** Applies one subscription message from the publisher (first byte 1: subscribe, 0: unsubscribe). */
  update(frame: Buffer): void {
    const topic = frame.subarray(1)
    const parts = topic[topic.length - 1] === 0 ? this.#classify(topic.toString('utf8', 0, topic.length - 1)) : undefined
    if (parts === undefined) return
    const [key, group] = parts
    let groups = this.#bySignal.get(key)
    if (frame[0] === 1) {
      if (groups === undefined) this.#bySignal.set(key, (groups = new Map()))
      const entry = groups.get(group) ?? { members: [], next: 0 }
      if (!entry.members.some((member) => member.equals(topic))) entry.members.push(Buffer.from(topic))
      groups.set(group, entry)
      debug('group %s of %s: %d members', group, key, entry.members.length)
    } else if (frame[0] === 0 && groups !== undefined) {
      // Only 0 is an unsubscription; other first bytes are not subscription messages at all.
      const entry = groups.get(group)
      if (entry === undefined) return
      entry.members = entry.members.filter((member) => !member.equals(topic))
      debug('group %s of %s: %d members', group, key, entry.members.length)
      if (entry.members.length > 0) return
      groups.delete(group)
      if (groups.size === 0) this.#bySignal.delete(key)
    }
  }

  /** One member topic per group sharing the messages whose topic frame is `topic`, taken in turn. */
  pick(topic: Buffer): Buffer[] {
    const groups = this.#bySignal.get(topic.toString('latin1'))
    if (groups === undefined) return []
    const picked: Buffer[] = []
    for (const entry of groups.values()) {
      picked.push(entry.members[entry.next % entry.members.length] as Buffer)
      entry.next = (entry.next + 1) % entry.members.length
    }
    return picked
  }
}

/** Responders: members of `$s[signal, node]` share the requests sent on `$q[signal]`. @internal */
export function responderTable(): MemberTable {
  return new MemberTable((topic) => {
    const parts = parseResponderTopic(topic)
    return parts === undefined ? undefined : [topicFrame(requestTopic(parts[0])).toString('latin1'), '']
  })
}

interface Member {
  /** The member's topic frame (NUL included). */
  topic: Buffer
  group: Group
  capacity: number
  /** Its `done` count when this relay first heard from it; until then it gets nothing. */
  base: number | undefined
  done: number
  /** Events this relay dealt it. */
  dealt: number
}

interface Group {
  name: string
  members: Member[]
  next: number
  /** Events no member had room for, oldest first: [header fields, payload JSON]. */
  waiting: [Record<string, unknown>, string][]
}

/** Unfinished events a member may still take. */
function room(member: Member): number {
  if (member.base === undefined) return 0
  return member.capacity - (member.dealt - (member.done - member.base))
}

/** Most group-state reports kept for members whose subscription has not arrived yet. */
const MAX_EARLY_STATES = 10_000

/**
 * Work groups, event by event: each event of a signal goes to one member of
 * each of its groups, to a member with room (fewer unfinished events than its
 * `concurrency`, as it reports), taken in turn. When no member has room the
 * event waits here, oldest first. @internal
 */
export class WorkGroups {
  /** Signal topic frame (latin1, NUL included) -> group name -> group. */
  readonly #bySignal = new Map<string, Map<string, Group>>()
  /** Member topic frame (latin1) -> member. */
  readonly #members = new Map<string, Member>()
  /** Reports that came before their member's subscription (different connections). */
  readonly #early = new Map<string, GroupState>()
  /** Events that wait for a member with room, over every group. */
  waiting = 0
  /** Events lost with a member that left or died before finishing them, or waiting in a group whose last member left. */
  lost = 0

  get size(): number {
    return this.#bySignal.size
  }

  /** Applies one subscription message (first byte 1: subscribe, 0: unsubscribe); returns deals now possible. */
  update(frame: Buffer): Frames[] {
    const topic = frame.subarray(1)
    const parts = topic[topic.length - 1] === 0 ? parseGroupTopic(topic.toString('utf8', 0, topic.length - 1)) : undefined
    if (parts === undefined) return []
    const [signal, name] = parts
    const key = topicFrame(signal).toString('latin1')
    const memberKey = topic.toString('latin1')
    if (frame[0] === 1) {
      if (this.#members.has(memberKey)) return []
      let groups = this.#bySignal.get(key)
      if (groups === undefined) this.#bySignal.set(key, (groups = new Map()))
      let group = groups.get(name)
      if (group === undefined) groups.set(name, (group = { name, members: [], next: 0, waiting: [] }))
      const member: Member = { topic: Buffer.from(topic), group, capacity: 1, base: undefined, done: 0, dealt: 0 }
      group.members.push(member)
      this.#members.set(memberKey, member)
      debug('group %s of %s: %d members', name, signal, group.members.length)
      const early = this.#early.get(memberKey)
      if (early === undefined) return []
      this.#early.delete(memberKey)
      return this.report(early)
    }
    if (frame[0] !== 0) return []
    // Only 0 is an unsubscription; other first bytes are not subscription messages at all.
    const member = this.#members.get(memberKey)
    this.#early.delete(memberKey)
    if (member === undefined) return []
    this.#members.delete(memberKey)
    const group = member.group
    group.members = group.members.filter((other) => other !== member)
    const unfinished = member.base === undefined ? 0 : member.dealt - (member.done - member.base)
    if (unfinished > 0) {
      this.lost += unfinished
      debug('a member of group %s left with %d unfinished events', name, unfinished)
    }
    debug('group %s of %s: %d members', name, signal, group.members.length)
    if (group.members.length > 0) return []
    this.lost += group.waiting.length
    this.waiting -= group.waiting.length
    const groups = this.#bySignal.get(key)
    groups?.delete(name)
    if (groups?.size === 0) this.#bySignal.delete(key)
    return []
  }

  /** Applies a member's report of its capacity and finished events; returns deals now possible. */
  report(state: GroupState): Frames[] {
    const key = topicFrame(state.topic).toString('latin1')
    const member = this.#members.get(key)
    if (member === undefined) {
      if (this.#early.size >= MAX_EARLY_STATES) this.#early.clear()
      this.#early.set(key, state)
      return []
    }
    // Reports are cumulative: an older one arriving late changes nothing.
    if (member.base === undefined) member.base = state.done
    else if (state.done < member.done) return []
    member.capacity = state.capacity
    member.done = state.done
    return this.#serve(member.group)
  }

  /**
   * Deals the events of one message (its header and body frames, on the signal
   * whose topic frame is `topic`) to each of the signal's groups: frames to
   * publish now; the rest waits for room. `undefined` when the message is not
   * valid JSON, so no member can be handed its events.
   */
  offer(topic: Buffer, header: Buffer, body: Buffer): Frames[] | undefined {
    // A group takes events once a member has reported its room (a member's readiness
    // proves its report arrived): a subscription alone, which anyone who reaches the
    // port can make, never makes events wait.
    const groups = [...(this.#bySignal.get(topic.toString('latin1'))?.values() ?? [])].filter((group) =>
      group.members.some((member) => member.base !== undefined)
    )
    if (groups.length === 0) return []
    let head: Record<string, unknown>
    let payloads: unknown[]
    try {
      head = JSON.parse(header.toString('utf8')) as Record<string, unknown>
      payloads = JSON.parse(body.toString('utf8')) as unknown[]
    } catch {
      return undefined
    }
    if (typeof head !== 'object' || head === null || !Array.isArray(payloads) || typeof head.q !== 'number') return undefined
    const seq = head.q
    const events = payloads.map((payload, i): [Record<string, unknown>, string] => [{ ...head, q: seq + i }, JSON.stringify(payload)])
    const deals: Frames[] = []
    for (const group of groups) {
      group.waiting.push(...events)
      this.waiting += events.length
      deals.push(...this.#serve(group))
    }
    return deals
  }

  /** Drops the oldest waiting events past `limit` (drop mode), counting them as lost. */
  shed(limit: number): void {
    for (const groups of this.#bySignal.values()) {
      for (const group of groups.values()) {
        const excess = this.waiting - limit
        if (excess <= 0) return
        const dropped = group.waiting.splice(0, Math.min(excess, group.waiting.length)).length
        this.waiting -= dropped
        this.lost += dropped
      }
    }
  }

  /** Hands the group's waiting events, oldest first, to members with room, in turn. */
  #serve(group: Group): Frames[] {
    const deals: Frames[] = []
    const { members, waiting } = group
    let taken = 0
    while (taken < waiting.length) {
      let chosen: Member | undefined
      for (let tried = 0; tried < members.length; tried++) {
        const member = members[group.next % members.length] as Member
        group.next = (group.next + 1) % members.length
        if (room(member) > 0) {
          chosen = member
          break
        }
      }
      if (chosen === undefined) break
      const [head, payload] = waiting[taken++] as [Record<string, unknown>, string]
      chosen.dealt++
      deals.push([chosen.topic, JSON.stringify(head), '[' + payload + ']'])
    }
    if (taken > 0) {
      waiting.splice(0, taken)
      this.waiting -= taken
    }
    return deals
  }
}
