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

function onExit(): void {
  let lost = 0
  for (const node of started) lost += node.unflushed()
  if (lost === 0) return
  const kind = isMainThread ? 'process' : 'worker thread'
  // Synchronous, and straight to the file descriptor: this is the process's last moment.
  try {
    writeSync(
      2,
      `pyvent: ${lost} event${lost === 1 ? '' : 's'} sent by this ${kind} may be lost: it exited before the relay confirmed ${lost === 1 ? 'it' : 'them'}. ` +
        'Call `await pyvent.flush()` (or `await pyvent.stop()`) before process.exit().\n'
    )
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
}

export function untrack(node: Tracked): void {
  started.delete(node)
}
