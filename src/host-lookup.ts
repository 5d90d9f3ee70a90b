/**
 * The first thing a diagnosis checks: whether the host name of the address
 * resolves at all (a typo in a host name is otherwise reported as "nothing
 * listens there").
 *
 * @module
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { within } from './within'

/** How long the lookup may take: a resolver slower than that cannot be blamed, and the diagnosis goes on. */
const LOOKUP_MS = 1000

/** Why `host` does not resolve (`'ENOTFOUND'`, ...), or `undefined` when it does, is an address, or the resolver did not say within a second. */
export async function lookupFailure(host: string): Promise<string | undefined> {
  if (isIP(host) !== 0) return undefined
  const answer = lookup(host).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error.code ?? 'lookup failed'
  )
  return within(answer, LOOKUP_MS, undefined)
}
