// A redis-server of a test's own: on a portBlock port, in a temporary directory,
// without persistence unless asked, stopped in teardown. Waits for its "Ready to
// accept connections" log line, never for time to pass.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { deadline } from './helpers'
import { requireSystem } from './requires'

/** Skips (or, in CI, fails) `t` where redis-server is missing; true when it is there. */
export function requireRedis(t: Test, what: string): boolean {
  return requireSystem(t, {
    what,
    needs: 'Debian package redis-server (redis-server and redis-cli)',
    check: () => {
      const server = spawnSync('redis-server', ['--version'])
      if (server.error !== undefined) return 'redis-server is not on the PATH'
      const cli = spawnSync('redis-cli', ['--version'])
      return cli.error === undefined ? undefined : 'redis-cli is not on the PATH'
    }
  })
}

/** A running redis-server. */
export interface RedisServer {
  port: number
  url: string
  /** Stops it (SIGKILL when `hard`) and waits for its exit. */
  stop(hard?: boolean): Promise<void>
  /** Starts it again on the same port and directory (its append-only file, if any, restores the data). */
  start(): Promise<void>
  /** Runs redis-cli against it and returns its output. */
  cli(...args: string[]): string
}

/** Starts redis-server on `port`; `appendonly` keeps data across a restart. */
export async function startRedis(t: Test, port: number, options: { appendonly?: boolean } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pyvent-redis-'))
  let child: ReturnType<typeof spawn> | undefined
  let exited: Promise<unknown> = Promise.resolve()
  const start = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', options.appendonly === true ? 'yes' : 'no', '--dir', dir]
    const server = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = server
    exited = once(server, 'exit')
    const log: string[] = []
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: server.stdout! }).on('line', (line) => {
        log.push(line)
        if (/Ready to accept connections/.test(line)) resolve()
      })
      void exited.then(() => reject(new Error(`redis-server exited before it was ready: ${log.join('\n')}`)))
    })
    await deadline(ready, 10_000, `redis-server on port ${port} to be ready`)
  }
  const stop = async (hard = false): Promise<void> => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    child.kill(hard ? 'SIGKILL' : 'SIGTERM')
    await exited
  }
  await start()
  t.teardown(async () => {
    await stop(true)
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    cli: (...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout
  }
}
