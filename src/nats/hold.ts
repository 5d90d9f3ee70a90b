/**
 * Whether a NATS connection keeps its process alive. nats.js keeps a socket
 * and a ping timer referenced for the connection's whole life, so a script
 * that only sends would never reach `beforeExit`, where the facade stops a
 * node nobody listens on. A connection is held only while something needs it
 * (listeners, waits, requests, responders, a round trip or a close in
 * progress); otherwise its socket and ping timer are unreferenced, as the
 * relay engine's receive loop stops when nothing needs it.
 *
 * nats.js has no public switch for this: the socket and timer are reached
 * through its internals, and a missing one is only logged (a process then
 * needs `stop()` to exit, as without this module).
 *
 * @module
 */
import createDebug from 'debug'

const debug = createDebug('pyvent:nats:hold')

interface Refable {
  ref(): unknown
  unref(): unknown
}

/** The parts of nats.js's connection this reaches (nats-core's NatsConnectionImpl / ProtocolHandler). */
interface Internals {
  protocol?: {
    transport?: { socket?: Partial<Refable> }
    heartbeats?: { timer?: Partial<Refable>; _schedule?: () => void }
  }
}

const patched = new WeakSet<object>()

/**
 * References or unreferences the socket and ping timer of `connection`. Call
 * again after a reconnect (a new socket). The ping timer is rescheduled after
 * every ping, so the scheduler is wrapped once to keep applying `held()`.
 */
export function applyHold(connection: unknown, held: () => boolean): void {
  const protocol = (connection as Internals).protocol
  const socket = protocol?.transport?.socket
  const heartbeats = protocol?.heartbeats
  if (socket?.ref === undefined || socket.unref === undefined || heartbeats === undefined) {
    debug('nats.js internals not found: this connection holds its process until stopped')
    return
  }
  const hold = held()
  if (hold) socket.ref()
  else socket.unref()
  const timer = heartbeats.timer
  if (timer?.ref !== undefined && timer.unref !== undefined) {
    if (hold) timer.ref()
    else timer.unref()
  }
  const schedule = heartbeats._schedule
  if (!patched.has(heartbeats) && typeof schedule === 'function') {
    patched.add(heartbeats)
    heartbeats._schedule = function (this: typeof heartbeats) {
      schedule.call(this)
      if (!held()) this.timer?.unref?.()
    }
  }
}
