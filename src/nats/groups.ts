/**
 * A plain work group on NATS: a queue subscription. The server hands each
 * message (a batch of events) of the signal to one member of the queue group,
 * at random among the members it knows, whatever they are busy with.
 * `concurrency` therefore cannot steer where events go; it caps how many of
 * this member's events run at once here, the rest waiting in order in this
 * process until one finishes.
 *
 * @module
 */
import type { EventMessage } from '../codec'
import type { Membership } from '../engine'
import { escapeToken, signalFilter } from './subjects'
import type { WireMsg } from './wire'

/** A subscription, made now or once the connection is up. */
export interface Interest {
  unsubscribe(): void
}

/** What a group member needs from its connection. */
export interface MemberHost {
  /** Subscribes (now, or once connected); `undefined` after close. */
  subscribe(subject: string, queue: string | undefined, onMessage: (msg: WireMsg) => void): Interest
  /** Decodes an event message, or counts it malformed and returns `undefined`. */
  decode(msg: WireMsg): EventMessage | undefined
  /** Hands a member's event to the node. */
  deliver(message: EventMessage): void
  /** Counts an event moved to the dead-letter store. */
  deadLettered(): void
}

/** One membership of a work group, plain or durable. */
export interface GroupMember {
  /** The membership changed (its capacity). */
  update(membership: Membership): void
  /** One of its events is finished. */
  finished(receipt: string | undefined, error: unknown): void
  /** Leaves the group. */
  leave(): void
  /** The connection is (again) up: for members that keep their own server state. */
  connected?(): void
  /** Settles once the member's server state exists (a durable group's stream and consumer): `true`, or `false` when that failed (reported). */
  ready?(): Promise<boolean>
  /** Why the server cannot hold this member (no JetStream), while that lasts. */
  unsupported?(): Error | undefined
}

/** The queue group of work group `group`. */
export function queueName(group: string): string {
  return escapeToken(group)
}

/** A member of a plain work group. */
export class QueueMember implements GroupMember {
  #membership: Membership
  readonly #host: MemberHost
  readonly #subscription: Interest
  /** Events received and not yet handed over (one payload each), oldest first. */
  readonly #backlog: EventMessage[] = []
  /** Events handed over. */
  #handed = 0

  constructor(membership: Membership, host: MemberHost) {
    this.#membership = membership
    this.#host = host
    this.#subscription = host.subscribe(signalFilter('e', membership.signal), queueName(membership.group), (msg) => this.#receive(msg))
  }

  update(membership: Membership): void {
    this.#membership = membership
    this.#pump()
  }

  finished(): void {
    this.#pump()
  }

  leave(): void {
    this.#subscription.unsubscribe()
    this.#backlog.length = 0
  }

  #receive(msg: WireMsg): void {
    const message = this.#host.decode(msg)
    if (message === undefined || message.kind !== 'e') return
    const { topic, group } = this.#membership
    for (let i = 0; i < message.payloads.length; i++) {
      this.#backlog.push({ ...message, topic, group, seq: message.seq + i, payloads: [message.payloads[i]] })
    }
    this.#pump()
  }

  /** Hands over events while fewer than `capacity` are unfinished. */
  #pump(): void {
    const membership = this.#membership
    while (this.#backlog.length > 0 && this.#handed - membership.done < membership.capacity) {
      this.#handed++
      this.#host.deliver(this.#backlog.shift() as EventMessage)
    }
  }
}
