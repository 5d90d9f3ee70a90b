/**
 * Work groups and responders as the relay knows them, learnt from the
 * subscriptions its publisher reports: a member subscribes to its own topic
 * (a group member's, or a responder's), and its subscription goes away when it
 * unsubscribes or its connection drops. Only topics are read, never payloads.
 *
 * @module
 */
import createDebug from 'debug'
import { parseGroupTopic, parseResponderTopic, requestTopic, topicFrame } from './codec'

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

/** Work groups: members of `$g[signal, group, node]` share the events of `signal`. @internal */
export function groupTable(): MemberTable {
  return new MemberTable((topic) => {
    const parts = parseGroupTopic(topic)
    return parts === undefined ? undefined : [topicFrame(parts[0]).toString('latin1'), parts[1]]
  })
}

/** Responders: members of `$s[signal, node]` share the requests sent on `$q[signal]`. @internal */
export function responderTable(): MemberTable {
  return new MemberTable((topic) => {
    const parts = parseResponderTopic(topic)
    return parts === undefined ? undefined : [topicFrame(requestTopic(parts[0])).toString('latin1'), '']
  })
}
