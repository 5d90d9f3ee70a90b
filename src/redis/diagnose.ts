/**
 * Why no Redis server answered, in one sentence saying what to do.
 *
 * @module
 */
import { connect } from 'node:net'
import { lookupFailure } from '../host-lookup'
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

/**
 * What answers at `host:port` to a plain `PING`: `undefined` when nothing
 * accepts connections there, `''` when something does but says nothing within
 * {@link CHECK_MS}, else the first line it sent.
 */
function firstLine(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = ''
    let connected = false
    const socket = connect({ host, port })
    const done = (result: string | undefined): void => {
      socket.destroy()
      resolve(result)
    }
    const heard = (): string | undefined => (connected ? text.split(/\r?\n/)[0]!.slice(0, 80) : undefined)
    socket.setTimeout(CHECK_MS)
    socket.once('connect', () => {
      connected = true
      socket.write('PING\r\n')
    })
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (text.includes('\n') || text.length > 200) done(heard())
    })
    for (const end of ['timeout', 'close', 'error'] as const) socket.once(end, () => done(heard()))
  })
}

/** Says what answers at the URL's address, and what to do about it. */
export async function diagnose(options: ResolvedOptions): Promise<string> {
  const url = options.url ?? ''
  const shown = maskUrl(url)
  const refused = lastRefusal(url)
  if (refused !== undefined) return refusal(refused, shown)
  const { host, port } = address(url)
  const unresolved = await lookupFailure(host)
  if (unresolved !== undefined) return `The host name "${host}" does not resolve (${unresolved}): fix the URL in the "url" option or PYVENT_URL (now ${shown}).`
  const line = await firstLine(host, port)
  if (line === undefined) {
    return `Nothing accepts connections at ${host}:${port}: start redis-server there (or fix the URL in the "url" option or PYVENT_URL, now ${shown}).`
  }
  if (line.startsWith('-')) return refusal(line.slice(1), shown)
  if (line.startsWith('+PONG')) {
    return `Redis answers at ${host}:${port}, but the connection pyvent made was not ready within ${options.readyTimeout} ms: check the database number in ${shown} (the server may have fewer), or raise readyTimeout for a slow server.`
  }
  if (line.startsWith('INFO ')) return `A NATS server answers at ${host}:${port}, not Redis: use a nats:// URL for it, or the port of your Redis server (now ${shown}).`
  if (line.startsWith('HTTP/')) return `An HTTP server answers at ${host}:${port}, not Redis: use the port of your Redis server (now ${shown}).`
  if (line === '') {
    return `Something accepts connections at ${host}:${port} but did not answer a PING as Redis would: a TLS server wants rediss:// instead of redis://, or this is not the Redis port (now ${shown}).`
  }
  return `Something at ${host}:${port} answered, but not as Redis (it said ${JSON.stringify(line)}): use the port of your Redis server (now ${shown}).`
}

/** What to do about an error reply Redis gave this process (`reply` without its `-`). */
function refusal(reply: string, shown: string): string {
  const said = JSON.stringify(reply.split(/[.\r\n]/)[0])
  if (/^(NOAUTH|WRONGPASS)\b|\bAUTH\b|password/i.test(reply)) {
    return `Redis refused the connection (${said}): check the user name and password in ${shown} against the server's requirepass or ACL.`
  }
  if (/DB index/i.test(reply)) {
    return `Redis refused the database number in ${shown} (${said}): the server has fewer databases (its "databases" setting); use a lower number.`
  }
  return `Redis refused the connection (${said}): see what the server says, and check ${shown} against its settings.`
}
