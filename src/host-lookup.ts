/**
 * The first thing a diagnosis checks: whether the host name of the address
 * resolves at all (a typo in a host name is otherwise reported as "nothing
 * listens there").
 *
 * @module
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'

/** Why `host` does not resolve (`'ENOTFOUND'`, ...), or `undefined` when it does or is an address. */
export async function lookupFailure(host: string): Promise<string | undefined> {
  if (isIP(host) !== 0) return undefined
  try {
    await lookup(host)
    return undefined
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'lookup failed'
  }
}
