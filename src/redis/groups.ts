/**
 * A plain work group on Redis: each event of the signal to one live member.
 * The sender's script pushes each event to the group's list and PUBLISHes a
 * wake-up on the group's channel (or, when no member hears it, removes the
 * group); every member woken takes what it has room for with `LPOP list room`,
 * so exactly one member takes each event and none takes more than its
 * `concurrency`. Nothing is stored for long: an event a member had taken when
 * it died is lost, as on the relay; durable groups (durable.ts) keep them.
 *
 * @module
 */
import createDebug from 'debug'
import type { Membership } from '../engine'
import type { Outbox } from './outbox'
import { decodeEvent, groupId, groupList, groupsKey, groupWake, WireEvent } from './wire'

const debug = createDebug('pyvent:redis:group')

/** What a member needs from its connection. */
export interface MemberContext {
  readonly outbox: Outbox
  /** Subscribes on the subscriber connection; resolves once Redis confirmed it. */
  subscribe(channel: string, listener: () => void): Promise<void>
  unsubscribe(channel: string): void
  /** Makes readiness (`probe`) wait for this too. */
  track(promise: Promise<unknown>): void
  /** Hands events to the node as this member's share; a durable group's with their stream entry ids and delivery counts. */
  deliver(membership: Membership, event: WireEvent, receipts?: string[], deliveries?: number): void
  malformed(): void
}

/** One plain membership of this node. */
export class PlainMember {
  membership: Membership
  readonly #context: MemberContext
  readonly #id: string
  readonly #list: string
  #inHand = 0
  /** Wake-ups seen: a pull that found the list short is only final if none came meanwhile. */
  #wakes = 0
  #more = true
  #pulling = false
  #left = false

  constructor(context: MemberContext, membership: Membership) {
    this.#context = context
    this.membership = membership
    this.#id = groupId(membership.signal, membership.group)
    this.#list = groupList(this.#id)
    const subscribed = context.subscribe(groupWake(this.#id), () => {
      this.#wakes++
      this.#more = true
      void this.#pull()
    })
    // Registered only once the wake-up subscription is live: a sender that found
    // nobody subscribed would remove the group again.
    context.track(subscribed.then(() => this.register()))
  }

  /** Adds the group to its signal's set (again, after a reconnection: a sender may have removed it meanwhile). */
  register(): Promise<unknown> {
    if (this.#left) return Promise.resolve()
    return this.#context.outbox.command(['SADD', groupsKey(this.membership.signal), this.#id])
  }

  /** New capacity. */
  update(membership: Membership): void {
    this.membership = membership
    void this.#pull()
  }

  finished(): void {
    this.#inHand--
    void this.#pull()
  }

  leave(): void {
    this.#left = true
    this.#context.unsubscribe(groupWake(this.#id))
  }

  async #pull(): Promise<void> {
    while (!this.#pulling && !this.#left && this.#more) {
      const room = this.membership.capacity - this.#inHand
      if (room <= 0) return
      this.#pulling = true
      const wakes = this.#wakes
      let taken: unknown
      try {
        taken = await this.#context.outbox.command(['LPOP', this.#list, String(room)])
      } finally {
        this.#pulling = false
      }
      const items = Array.isArray(taken) ? (taken as unknown[]) : []
      if (items.length < room && wakes === this.#wakes) this.#more = false
      if (this.#left) {
        if (items.length > 0) debug('%d events of %s taken while leaving: lost', items.length, this.#id)
        return
      }
      for (const item of items) {
        const event = typeof item === 'string' ? decodeEvent(item) : undefined
        if (event === undefined || event.payloads.length !== 1) {
          this.#context.malformed()
          continue
        }
        this.#inHand++
        this.#context.deliver(this.membership, event)
      }
    }
  }
}
