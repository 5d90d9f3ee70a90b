/**
 * CURVE authentication and encryption: key options, loading keys from a file
 * named by an environment variable, and the relay's ZAP handler that admits
 * only the allowed client keys.
 *
 * @module
 */
import { readFileSync, statSync } from 'node:fs'
import createDebug from 'debug'
import { Context, Router } from 'zeromq'

const debug = createDebug('pyvent:relay')

/**
 * CURVE keys (Z85 text, 40 characters each; make pairs with `zeromq`'s
 * `curveKeyPair()`). With these set, only nodes holding an
 * allowed key can send or receive, and all traffic is encrypted.
 */
export interface CurveOptions {
  /** The relay's public key. Every node needs it. */
  serverPublicKey: string
  /** The relay's secret key. Only nodes that may host the relay need it. */
  serverSecretKey?: string
  /** This node's public key (one pair may be shared by all nodes in simple setups). */
  publicKey: string
  /** This node's secret key. */
  secretKey: string
  /**
   * The client public keys the relay admits.
   * @default [publicKey]: the hosting node's own client key, for the shared-pair setup
   */
  allowedKeys?: string[]
}

const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/
const KEY_FIELDS = ['serverPublicKey', 'serverSecretKey', 'publicKey', 'secretKey'] as const

/** Validates CURVE options, throwing a `TypeError` that names the faulty field. */
export function checkCurve(value: unknown, source: string): CurveOptions {
  if (typeof value !== 'object' || value === null) throw new TypeError(`${source} must be an object of CURVE keys.`)
  const curve = value as Record<string, unknown>
  for (const field of KEY_FIELDS) {
    const key = curve[field]
    if (key === undefined && field === 'serverSecretKey') continue
    if (typeof key !== 'string' || !Z85_KEY.test(key)) {
      throw new TypeError(`${source}.${field} must be a 40-character Z85 CURVE key (see curveKeyPair()).`)
    }
  }
  const allowed = curve.allowedKeys
  if (allowed !== undefined && (!Array.isArray(allowed) || !allowed.every((key) => typeof key === 'string' && Z85_KEY.test(key)))) {
    throw new TypeError(`${source}.allowedKeys must be an array of 40-character Z85 CURVE keys.`)
  }
  return curve as unknown as CurveOptions
}

const warnedFiles = new Set<string>()

/**
 * Reads CURVE keys from the JSON file named by `PYVENT_CURVE_KEYS` (the same
 * fields as {@link CurveOptions}). Warns once if other users may read the file.
 */
export function curveFromEnv(env: NodeJS.ProcessEnv): CurveOptions | undefined {
  const file = env.PYVENT_CURVE_KEYS
  if (file === undefined || file === '') return undefined
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new TypeError(`PYVENT_CURVE_KEYS names "${file}", which cannot be read: ${(error as Error).message}`)
  }
  if ((statSync(file).mode & 0o077) !== 0 && !warnedFiles.has(file)) {
    warnedFiles.add(file)
    process.emitWarning(`The CURVE key file "${file}" can be read by other users; restrict it with chmod 600.`, {
      type: 'SecurityWarning',
      code: 'PYVENT_KEY_FILE_MODE'
    })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new TypeError(`PYVENT_CURVE_KEYS file "${file}" is not valid JSON.`)
  }
  return checkCurve(parsed, `PYVENT_CURVE_KEYS file "${file}"`)
}

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
