// Real nats-server processes for the NATS tests: one server, or three routed
// as a cluster with JetStream, on ports from the test file's portBlock, each
// with its own store in a temp dir, stopped in teardown. Readiness is read from
// each server's monitoring endpoint (/routez for the routes, /healthz for
// JetStream), never slept on.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { spawnProcess, until, type Child } from './helpers'
import type { SystemRequirement } from './requires'

/** Where Debian's package puts the binary (not always on PATH). */
const CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server']

/** The nats-server binary, or `undefined`. */
export function natsServerPath(): string | undefined {
  const found = CANDIDATES.find((path) => existsSync(path))
  if (found !== undefined) return found
  try {
    return execFileSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

/** For requireSystem. */
export function natsRequirement(what: string): SystemRequirement {
  return { what, needs: 'Debian package nats-server', check: () => (natsServerPath() === undefined ? 'nats-server is not installed' : undefined) }
}

/** One running server. */
export interface NatsServer {
  name: string
  port: number
  url: string
  httpPort: number
  child: Child
  /** Kills it (SIGKILL) and waits for the exit. */
  kill(): Promise<void>
}

function httpJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve) => {
    const request = get({ host: '127.0.0.1', port, path, timeout: 1000 }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (text += chunk))
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) })
        } catch {
          resolve({ status: response.statusCode ?? 0, body: undefined })
        }
      })
    })
    request.on('error', () => resolve({ status: 0, body: undefined }))
    request.on('timeout', () => request.destroy())
  })
}

/** Starts one server with extra arguments (auth, JetStream...), waits for its monitoring endpoint. */
export async function startServer(t: Test, ports: { next(): number }, args: string[] = [], name = 'n1'): Promise<NatsServer> {
  const port = ports.next()
  const httpPort = port + 1
  const child = spawnProcess(t, natsServerPath() as string, ['-a', '127.0.0.1', '-p', String(port), '-m', String(httpPort), '-n', name, ...args], { name: `nats-server ${name}` })
  await until(async () => (await httpJson(httpPort, '/varz')).status === 200, 10_000, `nats-server ${name} to answer on ${httpPort}`)
  return server(name, port, httpPort, child)
}

function server(name: string, port: number, httpPort: number, child: Child): NatsServer {
  return {
    name,
    port,
    url: `nats://127.0.0.1:${port}`,
    httpPort,
    child,
    async kill() {
      child.process.kill('SIGKILL')
      await child.exit()
    }
  }
}

/**
 * Three servers routed as one cluster, with JetStream (each its own store dir).
 * Resolves once every server has routes to both others and JetStream is healthy.
 */
export async function startCluster(t: Test, ports: { next(): number }): Promise<NatsServer[]> {
  const dir = mkdtempSync(join(tmpdir(), 'pyvent-nats-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const client = [ports.next(), ports.next(), ports.next()]
  const http = [ports.next(), ports.next()]
  const httpPorts = [http[0]!, http[0]! + 1, http[1]!]
  const clusterPorts = client.map((port) => port + 1)
  const routes = clusterPorts.map((port) => `nats://127.0.0.1:${port}`).join(',')
  const servers = client.map((port, i) => {
    const name = `n${i + 1}`
    const child = spawnProcess(
      t,
      natsServerPath() as string,
      ['-a', '127.0.0.1', '-p', String(port), '-m', String(httpPorts[i]), '-n', name, '--cluster_name', 'pyvent', '--cluster', `nats://127.0.0.1:${clusterPorts[i]}`, '--routes', routes, '-js', '-sd', join(dir, name)],
      { name: `nats-server ${name}` }
    )
    return server(name, port, httpPorts[i]!, child)
  })
  for (const s of servers) {
    await until(async () => {
      const { body } = await httpJson(s.httpPort, '/routez')
      const names = new Set(((body as { routes?: { remote_id?: string }[] } | undefined)?.routes ?? []).map((route) => route.remote_id))
      return names.size >= 2
    }, 20_000, `${s.name} to route to both other servers`)
  }
  for (const s of servers) {
    await until(async () => (await httpJson(s.httpPort, '/healthz')).status === 200, 30_000, `JetStream on ${s.name} to be healthy`)
  }
  return servers
}

/** Every server's URL, comma-separated: PYVENT_URL for a node that may use any of them. */
export function clusterUrl(servers: NatsServer[]): string {
  return servers.map((s) => s.url).join(',')
}

/** A monitoring endpoint's JSON (`{}` if it does not answer). */
export async function monitor(s: NatsServer, path: string): Promise<unknown> {
  return (await httpJson(s.httpPort, path)).body ?? {}
}
