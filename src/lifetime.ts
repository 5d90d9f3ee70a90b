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

function onExit(): void {
  let lost = 0
  for (const node of started) lost += node.unflushed()
  if (lost === 0) return
  const kind = isMainThread ? 'process' : 'worker thread'
  const what = `${lost} message${lost === 1 ? '' : 's'} (events, requests or replies) sent by this ${kind} may be lost`
  const them = lost === 1 ? 'it' : 'them'
  const line = crashing
    ? `pyvent: ${what}: it crashed before the relay confirmed ${them}.\n`
    : `pyvent: ${what}: it exited before the relay confirmed ${them}. Call \`await pyvent.flush()\` (or \`await pyvent.stop()\`) before process.exit().\n`
  // Synchronous, and straight to the file descriptor: this is the process's last moment.
  try {
    writeSync(2, line)
  } catch {
    // stderr is closed: nothing left to tell.
  }
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
