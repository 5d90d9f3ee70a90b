/**
 * Loads node-redis, the optional peer dependency, on first use only: a program
 * on the relay never needs it installed.
 *
 * @module
 */
import { dirname } from 'node:path'
import { MissingDependencyError } from '../errors'

/** What pyvent uses of a node-redis client (kept narrow: node-redis's own types are generic and heavy). */
export interface RedisClient {
  connect(): Promise<unknown>
  sendCommand(args: string[]): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>
  unsubscribe(channel: string): Promise<void>
  pSubscribe(pattern: string, listener: (message: string, channel: string) => void): Promise<void>
  pUnsubscribe(pattern: string): Promise<void>
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'ready' | 'end' | 'reconnecting', listener: () => void): unknown
  off(event: 'error' | 'ready' | 'end', listener: (...args: never[]) => void): unknown
  ref(): void
  unref(): void
  close(): Promise<void>
  destroy(): void
  readonly isReady: boolean
  readonly isOpen: boolean
}

/** The options pyvent gives `createClient`. */
export interface ClientOptions {
  url: string
  name: string
  socket: { reconnectStrategy(retries: number, cause: Error): number | Error; connectTimeout: number }
}

type CreateClient = (options: ClientOptions) => RedisClient

let createClient: CreateClient | undefined

/**
 * node-redis's `createClient`.
 *
 * @param shownUrl - the URL with its password masked, for the error message.
 * @throws MissingDependencyError when the `redis` package is not installed.
 */
export function loadRedis(shownUrl: string): CreateClient {
  if (createClient !== undefined) return createClient
  try {
    // The package is "redis"; only its core, @redis/client, is loaded (from where
    // "redis" resolves it): pyvent uses no module commands, and the modules
    // (search, JSON, bloom, time series) cost a start-up that short scripts feel.
    const main = require.resolve('redis')
    const core = require.resolve('@redis/client', { paths: [dirname(main)] })
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    createClient = (require(core) as { createClient: CreateClient }).createClient
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') throw new MissingDependencyError('redis', shownUrl, { cause: error })
    throw error
  }
  return createClient
}

/** The URL with its password (or a lone token) replaced by `***`. */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)([^@/]*)@/i, (_all, scheme: string, auth: string) => {
    const colon = auth.indexOf(':')
    return `${scheme}${colon < 0 ? '***' : `${auth.slice(0, colon)}:***`}@`
  })
}
