/**
 * This node's work-group memberships: one per group it listens in, keyed by
 * its member topic, with the room it offers (`concurrency`) and the events it
 * finished. They outlive sessions: a new connection is told them all.
 *
 * @module
 */
import type { ListenOptions } from './dispatcher'
import type { Engine, Membership } from './engine'
import { resolveDurable } from './listen-options'
import { InvalidArgumentError } from './errors'

/** A node's memberships, by member topic. @internal */
export class Memberships {
  readonly #byTopic = new Map<string, Membership>()
  readonly #engine: Engine

  constructor(engine: Engine) {
    this.#engine = engine
  }

  has(topic: string): boolean {
    return this.#byTopic.has(topic)
  }

  values(): Iterable<Membership> {
    return this.#byTopic.values()
  }

  /** Records a membership, or updates its capacity; a TypeError if it would change between plain and durable. */
  join(topic: string, signal: string, options: ListenOptions): Membership {
    const capacity = options.concurrency ?? 1
    const durable = resolveDurable(options.durable, this.#engine)
    const known = this.#byTopic.get(topic)
    if (known === undefined) {
      const membership: Membership = { topic, signal, group: options.group as string, capacity, done: 0, durable }
      this.#byTopic.set(topic, membership)
      return membership
    }
    if ((known.durable === undefined) !== (durable === undefined)) {
      throw new InvalidArgumentError(`This node is in group "${known.group}" of "${signal}" as a ${durable ? 'plain' : 'durable'} member already; disconnect it first.`)
    }
    known.capacity = capacity
    return known
  }

  /** Forgets the membership of `topic`; returns it, or `undefined` if `topic` is not a member topic. */
  leave(topic: string): Membership | undefined {
    const membership = this.#byTopic.get(topic)
    this.#byTopic.delete(topic)
    return membership
  }

  /** Counts one finished event of `topic`'s group; returns the membership, or `undefined` if it was left meanwhile. */
  finished(topic: string): Membership | undefined {
    const membership = this.#byTopic.get(topic)
    if (membership !== undefined) membership.done++
    return membership
  }
}
