/**
 * CURVE keys as options: their type, validation, and loading them from a file
 * named by an environment variable. (The relay's ZAP handler, which admits only
 * the allowed client keys, is in zmq/zap.ts.)
 *
 * @module
 */
import { readFileSync, statSync } from 'node:fs'
import { InvalidArgumentError } from './errors'

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
  if (typeof value !== 'object' || value === null) throw new InvalidArgumentError(`${source} must be an object of CURVE keys.`)
  const curve = value as Record<string, unknown>
  for (const field of KEY_FIELDS) {
    const key = curve[field]
    if (key === undefined && field === 'serverSecretKey') continue
    if (typeof key !== 'string' || !Z85_KEY.test(key)) {
      throw new InvalidArgumentError(`${source}.${field} must be a 40-character Z85 CURVE key (see curveKeyPair()).`)
    }
  }
  const allowed = curve.allowedKeys
  if (allowed !== undefined && (!Array.isArray(allowed) || !allowed.every((key) => typeof key === 'string' && Z85_KEY.test(key)))) {
    throw new InvalidArgumentError(`${source}.allowedKeys must be an array of 40-character Z85 CURVE keys.`)
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
    throw new InvalidArgumentError(`PYVENT_CURVE_KEYS names "${file}", which cannot be read: ${(error as Error).message}`)
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
    throw new InvalidArgumentError(`PYVENT_CURVE_KEYS file "${file}" is not valid JSON.`)
  }
  return checkCurve(parsed, `PYVENT_CURVE_KEYS file "${file}"`)
}
