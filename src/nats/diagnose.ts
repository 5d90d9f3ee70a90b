/**
 * Why no NATS server answered, in one sentence: nothing listens at the
 * servers, or something does that did not complete a NATS handshake.
 *
 * @module
 */
import { connect } from 'node:net'
import { lookupFailure } from '../host-lookup'
import type { ResolvedOptions } from '../options'
import { serverList } from './dial'
import { redact } from './load'

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** One sentence saying what to do. */
export async function diagnose(options: ResolvedOptions): Promise<string> {
  const servers = serverList(options.url as string)
  const open: string[] = []
  const unresolved: { name: string; failure: string }[] = []
  for (const server of servers) {
    let url: URL
    try {
      url = new URL(server)
    } catch {
      return `"${redact(server)}" is not a valid server URL: write nats://host:port.`
    }
    const failure = await lookupFailure(url.hostname.replace(/^\[|\]$/g, ''))
    if (failure !== undefined) {
      unresolved.push({ name: `"${url.hostname}"`, failure })
      continue
    }
    if (await reachable(url.hostname, Number(url.port || 4222))) open.push(redact(server))
  }
  // A name that does not resolve is the reason only when no other server was reachable either.
  if (open.length === 0 && unresolved.length > 0) {
    const [one] = unresolved
    if (unresolved.length === 1) return `The host name ${one!.name} does not resolve (${one!.failure}): fix the URL (option "url" or PYVENT_URL).`
    return `The host names ${unresolved.map(({ name, failure }) => `${name} (${failure})`).join(', ')} do not resolve: fix the URL (option "url" or PYVENT_URL).`
  }
  if (open.length === 0) {
    return `Nothing accepts connections at ${servers.map(redact).join(', ')}: start nats-server there (for example \`nats-server -p 4222 -js\`) or fix the URL (option "url" or PYVENT_URL).`
  }
  return `Something accepts connections at ${open.join(', ')} but no NATS session was made: check it is nats-server, and the credentials in the "nats" option (user/pass, token, nkeySeed or credsFile) and tls:// if the server requires TLS.`
}
