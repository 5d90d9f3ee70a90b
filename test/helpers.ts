// Shared test helpers: unique ports per test file, child processes and
// worker threads that are always ended in teardown, and deadlines (never sleeps).
import { ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { basename, join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { Node } from '../dist/index.js'

// Below Linux's ephemeral range (32768-60999 by default): a port in that range can
// be taken at any moment by the local end of some outgoing connection, and a
// relay that cannot bind would turn a test into a client waiting for nobody.
// PYVENT_TEST_PORT_BASE moves the whole range, so two checkouts can run their suites at once.
const FIRST_PORT = Number(process.env.PYVENT_TEST_PORT_BASE ?? 21000)
const PORTS_PER_FILE = 40

/**
 * A block of ports no other test file uses: files are numbered in sorted order,
 * and each owns PORTS_PER_FILE ports. `next()` hands out a fresh pair base
 * (the relay uses `port` and `port + 1`).
 */
export function portBlock(file: string): { next(): number } {
  const files = readdirSync(__dirname).filter((name) => /\.test\.ts$/.test(name)).sort()
  const index = files.indexOf(basename(file))
  if (index < 0) throw new Error(`${file} is not a test file in ${__dirname}`)
  let offset = 0
  return {
    next() {
      if (offset + 2 > PORTS_PER_FILE) throw new Error(`${basename(file)} used more than ${PORTS_PER_FILE} ports`)
      const port = FIRST_PORT + index * PORTS_PER_FILE + offset
      offset += 2
      return port
    }
  }
}

/** Path of a fixture script. */
export function fixture(name: string): string {
  return join(__dirname, 'fixtures', name)
}

/** Rejects with a clear message if `promise` has not settled within `ms`. */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Deadline: ${what} did not happen within ${ms} ms`)), ms)
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}

/** A child process whose stdout is read line by line. */
export interface Child {
  process: ChildProcess
  lines: string[]
  stderr: string[]
  /** Resolves with the first line (already seen or future) that satisfies `match`. */
  line(match: string | RegExp | ((line: string) => boolean), ms?: number): Promise<string>
  /** Resolves with the exit code once the process has exited. */
  exit(ms?: number): Promise<number | null>
}

/**
 * Spawns `command ...args` (a node script, a Python client, `ip netns exec ...`),
 * reads its stdout line by line, and kills it in teardown if still running.
 */
export function spawnProcess(t: Test, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; name?: string } = {}): Child {
  const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const name = options.name ?? basename(args[0] ?? command)
  const lines: string[] = []
  const stderr: string[] = []
  const waiters = new Set<() => void>()
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line)
    for (const wake of waiters) wake()
  })
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line))
  // 'close' comes after stdout has ended, so every line has been seen by then.
  const exited = once(child, 'close').then(([code]) => code as number | null)
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const test = (match: string | RegExp | ((line: string) => boolean)) => (line: string) =>
    typeof match === 'string' ? line === match : match instanceof RegExp ? match.test(line) : match(line)
  const describe = (): string => `${name} (stdout: ${lines.join(' | ')}; stderr: ${stderr.join(' | ')})`
  return {
    process: child,
    lines,
    stderr,
    line(match, ms = 20_000) {
      const ok = test(match)
      const found = new Promise<string>((resolve, reject) => {
        const check = (): void => {
          const hit = lines.find(ok)
          if (hit === undefined) return
          waiters.delete(check)
          resolve(hit)
        }
        waiters.add(check)
        check()
        void exited.then((code) => {
          if (waiters.delete(check)) reject(new Error(`${describe()} exited (${String(code)}) without printing ${String(match)}`))
        })
      })
      return deadline(found, ms, `a line matching ${String(match)} from ${describe()}`)
    },
    exit(ms = 20_000) {
      return deadline(exited, ms, `exit of ${describe()}`)
    }
  }
}

/** Spawns `node <script> ...args`: see {@link spawnProcess}. */
export function spawnNode(t: Test, script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Child {
  return spawnProcess(t, process.execPath, [script, ...args], { env })
}

/** Resolves `true` if this process can bind `port` on loopback now (and lets it go again). */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/**
 * Resolves once `condition()` holds, looking every few milliseconds; rejects
 * after `ms`. Only for states no event announces (a foreign process's exit, a
 * port the OS frees): everything else waits on its event.
 */
export async function until(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`Deadline: ${what} did not happen within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Two nodes on `port`: `listener`, which may host the relay, and `sender`, a
 * client; both stopped in teardown, the sender first.
 */
export function listenerAndSender(t: Test, port: number, senderOptions: { linger?: number } = {}): { listener: Node; sender: Node } {
  const listener = new Node({ port })
  const sender = new Node({ port, server: false, ...senderOptions })
  t.teardown(async () => {
    await sender.stop()
    await listener.stop()
  })
  return { listener, sender }
}

const pushWaiters = new WeakMap<unknown[], Set<() => void>>()

/**
 * Resolves with `list` once it holds `count` items. Woken by the list's own
 * `push` (which it wraps once), never by polling; rejects after `ms`.
 */
export function filled<T>(list: T[], count: number, what: string, ms = 20_000): Promise<T[]> {
  return pushedUntil(list, () => list.length >= count, what, ms)
}

/** Resolves with `list` once `done()` holds, checked now and after each push to `list`; rejects after `ms`. */
export function pushedUntil<T>(list: T[], done: () => boolean, what: string, ms = 20_000): Promise<T[]> {
  let waiters = pushWaiters.get(list)
  if (waiters === undefined) {
    const wake = (waiters = new Set())
    pushWaiters.set(list, wake)
    list.push = function (this: T[], ...items: T[]): number {
      const length = Array.prototype.push.apply(this, items)
      for (const waiter of [...wake]) waiter()
      return length
    }
  }
  const wake = waiters
  return deadline(
    new Promise<T[]>((resolve) => {
      const check = (): void => {
        if (!done()) return
        wake.delete(check)
        resolve(list)
      }
      wake.add(check)
      check()
    }),
    ms,
    what
  ).finally(() => wake.clear())
}
