/**
 * A node's lives, one after another: starts a {@link Session} when something
 * needs one, shares its readiness among callers, and ends it on stop() or
 * when the process has nothing else to do. Between two lives there is no
 * session at all, so a stopped node holds nothing.
 *
 * @module
 */
import { checkBodySize } from './payload'
import type { RelayCounters } from './engine'
import { StoppedError } from './errors'
import { track, Tracked, untrack, warnEndUnconfirmed } from './lifetime'
import { Session, SessionContext } from './session'

/** What the lifecycle needs from its node besides what each session does. */
export interface LifecycleHooks {
  /** The context every session of the node gets. */
  session: SessionContext
  /** Whether listeners, responders, waits or requests keep the node (and so its process) alive. */
  busy(): boolean
  /**
   * A stop begins: the node takes what ends with it now, in the tick stop() was
   * called, and returns what to run once the flush is over.
   */
  stopping(): () => void
  report(error: Error): void
}

/** The lives of one node. @internal */
export class Lifecycle implements Tracked {
  readonly #hooks: LifecycleHooks
  /** The current life, from its start until its stop has finished. */
  #session: Session | undefined
  /** Sends waiting for a session's first readiness (not yet queued on its connection). */
  #waitingSends = 0
  /** A readiness started for listeners in the background, reported once if it fails. */
  #activation: Promise<void> | undefined
  /** The relay's counters when the node last stopped hosting it. */
  lastRelay: RelayCounters | undefined

  constructor(hooks: LifecycleHooks) {
    this.#hooks = hooks
  }

  /** The current life, if the node has started (and not finished stopping). */
  get session(): Session | undefined {
    return this.#session
  }

  /**
   * The live session, opening one if there is none. A call made after stop()
   * waits for the stop to finish and starts the node again; a call that was
   * waiting for a session to open when stop() came rejects with StoppedError.
   */
  async open(): Promise<Session> {
    const current = this.#session
    if (current?.stopping !== undefined) {
      await current.stopping.catch(() => undefined)
      return this.open()
    }
    const session = current ?? this.#begin()
    await session.opened
    if (session.stopping !== undefined) throw new StoppedError('The node was stopped while this call was waiting for it to start.')
    return session
  }

  #begin(): Session {
    const session = new Session(this.#hooks.session)
    this.#session = session
    // Tracked from the start, not once open: sends made before that and a
    // process.exit() in the same tick are what the exit line must count.
    track(this)
    session.opened.then(
      () => undefined,
      () => {
        if (this.#session !== session) return
        this.#session = undefined
        untrack(this)
      }
    )
    return session
  }

  /** The first readiness of the live session, shared by every caller. */
  readyOnce(): Promise<Session> {
    const session = this.#session
    if (session?.isReady === true) return Promise.resolve(session)
    return this.open().then((live) => live.readyOnce().then(() => live))
  }

  /** A fresh round trip, whether or not the session was ready before. */
  async ready(): Promise<Session> {
    const session = await this.open()
    await session.ready()
    return session
  }

  /** Starts the node (and its receive loop) in the background for a new listener or responder. */
  activate(): void {
    const session = this.#session
    if (session?.live === true) {
      session.connection.startReceiving()
      return
    }
    // Every listener connected meanwhile shares this attempt: one failure, one report.
    this.#activation ??= this.readyOnce()
      .then(
        () => undefined,
        (error: Error) => {
          // Stopped on purpose before the engine answered: nothing to report.
          if (!(error instanceof StoppedError)) this.#hooks.report(error)
        }
      )
      .finally(() => {
        this.#activation = undefined
      })
  }

  /**
   * `send` before readiness: queued in the same reaction as readiness, in call
   * order, so a flush() called after the send (it awaits the same readiness)
   * comes after it.
   */
  publishWhenReady(signal: string, sender: string, json: string): Promise<void> {
    this.#waitingSends++
    return this.readyOnce().then(
      (session) => {
        this.#waitingSends--
        const connection = session.connection
        // Encoded before the engine said how much it takes: check against that now.
        checkBodySize(json, connection.maxPayloadBytes)
        return connection.publish(signal, sender, json)
      },
      (error: unknown) => {
        this.#waitingSends--
        throw error
      }
    )
  }

  async flush(): Promise<void> {
    const session = this.#session
    if (session === undefined) return
    // Sends still waiting for readiness are queued before this continuation runs.
    const live = this.#waitingSends > 0 || !session.isReady ? await this.readyOnce() : session
    await live.flush()
  }

  unflushed(): number {
    return this.#waitingSends + (this.#session?.openConnection?.unflushedCount ?? 0)
  }

  /** The process has nothing else to do: a node nothing keeps stops, handing its relay over. */
  idle(): void {
    const session = this.#session
    if (session?.live !== true || this.#hooks.busy()) return
    // The process is about to end: hand the relay over to the nodes still using it
    // (it exits by itself once none is) instead of making them take it over.
    session.stopping = this.#end(session, true)
  }

  stop(): Promise<boolean> {
    const session = this.#session
    if (session === undefined) return Promise.resolve(true)
    session.stopping ??= this.#end(session, false)
    return session.stopping
  }

  async #end(session: Session, handOver: boolean): Promise<boolean> {
    try {
      // A session still opening finishes first; one that failed to open has nothing to stop.
      // Only then wait: what stop() takes with it is decided in the tick it was called.
      if (session.openConnection === undefined && !(await session.opened.then(() => true, () => false))) return true
      untrack(this)
      const finish = this.#hooks.stopping()
      const flushed = await session.drain(this.#waitingSends)
      // Nobody awaits a stop at the end of the script: what it could not confirm is said here.
      if (!flushed && handOver) warnEndUnconfirmed(this.unflushed(), this.#hooks.session.options.linger)
      finish()
      this.lastRelay = (await session.close(flushed, handOver)) ?? this.lastRelay
      return flushed
    } finally {
      if (this.#session === session) this.#session = undefined
    }
  }
}
