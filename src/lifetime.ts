/**
 * The process's lifetime as nodes see it: a started node that nobody listens
 * on stops when the process has nothing else to do, and an exit with events
 * not yet confirmed says so on stderr (it cannot wait for them).
 *
 * @module
 */
import { writeSync } from 'node:fs'
import { isMainThread } from 'node:worker_threads'

/** What the process hooks need from a started node. */
export interface Tracked {
  /** The process has nothing else to do: stop if nothing keeps the node. */
  idle(): void
  /** Events sent but not proven delivered to the engine (what an exit now could lose). */
  unflushed(): number
}

const started = new Set<Tracked>()
let installed = false

function onBeforeExit(): void {
  for (const node of started) node.idle()
}

/** Whether the process is ending with an uncaught exception or an unhandled rejection. */
let crashing = false

function onUncaught(): void {
  // Without an 'uncaughtException' handler the process now ends with this error.
  if (process.listenerCount('uncaughtException') === 0) crashing = true
}

/** "N messages (...) sent by this process may be lost", and the pronoun for them. */
function mayBeLost(lost: number): [what: string, them: string] {
  const kind = isMainThread ? 'process' : 'worker thread'
  return [`${lost} message${lost === 1 ? '' : 's'} (events, requests or replies) sent by this ${kind} may be lost`, lost === 1 ? 'it' : 'them']
}

/** Writes one line to stderr, synchronously and straight to the file descriptor: the process is about to end. */
function say(line: string): void {
  try {
    writeSync(2, line)
  } catch {
    // stderr is closed: nothing left to tell.
  }
}

function onExit(): void {
  let lost = 0
  for (const node of started) lost += node.unflushed()
  if (lost === 0) return
  const [what, them] = mayBeLost(lost)
  say(
    crashing
      ? `pyvent: ${what}: it crashed before the relay (or server) confirmed ${them}.\n`
      : `pyvent: ${what}: it exited before the relay (or server) confirmed ${them}. Call \`await pyvent.flush()\` (or \`await pyvent.stop()\`) before process.exit().\n`
  )
}

/**
 * The flush of a node stopping because the process has nothing else to do gave
 * up after `linger` with `lost` messages unconfirmed: nobody awaits that stop,
 * so this line is the only word of it.
 */
export function warnEndUnconfirmed(lost: number, linger: number): void {
  if (lost <= 0) return
  const [what, them] = mayBeLost(lost)
  say(
    `pyvent: ${what}: the relay (or server) did not confirm ${them} within linger (${linger} ms) as the script ended; ` +
      'it is unreachable, or a listener or work group is behind (lossless delivery waits for it). Set `linger` higher to wait longer.\n'
  )
}

/** Follows a node from its start to its stop. */
export function track(node: Tracked): void {
  started.add(node)
  if (installed) return
  installed = true
  process.on('beforeExit', onBeforeExit)
  process.on('exit', onExit)
  process.on('uncaughtExceptionMonitor', onUncaught)
}

export function untrack(node: Tracked): void {
  started.delete(node)
}
