/**
 * Why no Redis server answered, in one sentence saying what to do.
 *
 * @module
 */
import { connect } from 'node:net'
import type { ResolvedOptions } from '../options'
import { lastRefusal } from './link'
import { maskUrl } from './load'

/** How long the diagnosis may take. */
const CHECK_MS = 1000

/** Host and port of a redis:// URL (6379 by default). */
export function address(url: string): { host: string; port: number } {
  try {
    const parsed = new URL(url)
    return { host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(parsed.port || 6379) }
  } catch {
    return { host: '127.0.0.1', port: 6379 }
  }
}

/** Tries a plain TCP connection to tell "nothing there" from "something there that did not answer as Redis". */
export async function diagnose(options: ResolvedOptions): Promise<string> {
  const url = options.url ?? ''
  const refused = lastRefusal(url)
  if (refused !== undefined) {
    return `Redis refused the connection ("${refused.split('.')[0]}"): check the user name and password in ${maskUrl(url)} against the server's requirepass or ACL.`
  }
  const { host, port } = address(url)
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = connect({ host, port })
    socket.setTimeout(CHECK_MS)
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('timeout', () => (socket.destroy(), resolve(false)))
    socket.once('error', () => resolve(false))
  })
  if (!reachable) {
    return `Nothing accepts connections at ${host}:${port}: start redis-server there (or fix the URL in the "url" option or PYVENT_URL, now ${maskUrl(url)}).`
  }
  return `Something accepts connections at ${host}:${port} but did not answer as Redis: check the password, the database number, and rediss:// (TLS) against redis:// in ${maskUrl(url)}.`
}
