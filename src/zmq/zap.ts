/**
 * The relay's ZAP handler (ZeroMQ authentication, RFC 27): admits a CURVE
 * client only if its public key is allowed.
 *
 * @module
 */
import createDebug from 'debug'
import { Context, Router } from 'zeromq'

const debug = createDebug('pyvent:relay')

const Z85_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#'

/** Z85 text of binary data whose length is a multiple of 4 (a 32-byte key gives 40 characters). */
function z85(data: Buffer): string {
  let text = ''
  for (let i = 0; i < data.length; i += 4) {
    let value = data.readUInt32BE(i)
    let chunk = ''
    for (let j = 0; j < 5; j++) {
      chunk = Z85_CHARS[value % 85] + chunk
      value = Math.floor(value / 85)
    }
    text += chunk
  }
  return text
}

/**
 * Answers ZeroMQ's authentication requests (ZAP, RFC 27) for the relay's
 * sockets: a CURVE client is admitted if its public key is allowed. Must live
 * in the relay's thread (ZAP handlers are per ZeroMQ context).
 */
export class ZapHandler {
  readonly #router: Router
  readonly #allowed: Set<string>
  /** Connections refused for an unknown key. */
  refused = 0

  /** @param context - the ZeroMQ context of the sockets it guards. */
  constructor(allowed: string[], context: Context) {
    this.#allowed = new Set(allowed)
    this.#router = new Router({ context, linger: 0 })
  }

  async start(): Promise<void> {
    await this.#router.bind('inproc://zeromq.zap.01')
    void this.#serve()
  }

  async #serve(): Promise<void> {
    try {
      for await (const [routing, empty, version, id, , , , mechanism, key] of this.#router) {
        const client = mechanism?.toString() === 'CURVE' && key?.length === 32 ? z85(key) : undefined
        const ok = client !== undefined && this.#allowed.has(client)
        if (!ok) {
          this.refused++
          debug('refused a connection (%s key %s)', mechanism?.toString() ?? '?', client ?? '-')
        }
        const status = ok ? ['200', 'OK'] : ['400', 'Key not allowed']
        await this.#router.send([routing as Buffer, empty as Buffer, version as Buffer, id as Buffer, ...status, client ?? '', ''])
      }
    } catch (error) {
      debug('authentication handler ended: %s', (error as Error).message)
    }
  }

  close(): void {
    this.#router.close()
  }
}
