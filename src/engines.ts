/**
 * Picks a node's engine by its URL: none, the ZeroMQ relay; `redis://`, Redis;
 * `nats://`, NATS. Each engine's folder is loaded on first use, so the facade
 * never loads a transport (or its client package) it does not need.
 *
 * @module
 */
import type { Engine } from './engine'
import { NodeOptions, ResolvedOptions, URL_SCHEMES } from './options'

/** Options that mean something on the relay only. */
const RELAY_ONLY: readonly (keyof NodeOptions)[] = ['port', 'host', 'server', 'heartbeatInterval', 'relayTimeout', 'delivery', 'highWaterMark', 'curve']
/** Options that mean something on one URL engine only. */
const ENGINE_ONLY: Readonly<Partial<Record<keyof NodeOptions, string>>> = { nats: 'nats', maxStreamLength: 'url' }

/** Warned once per process and option set. */
const warned = new Set<string>()

/** The engine for these options. */
export function engineFor(options: ResolvedOptions): Engine {
  const kind = options.url === undefined ? 'relay' : URL_SCHEMES[/^[a-z]+:/i.exec(options.url)?.[0].toLowerCase() ?? '']
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (kind === 'redis') return (require('./redis') as { engine: Engine }).engine
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (kind === 'nats') return (require('./nats') as { engine: Engine }).engine
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./zmq') as { engine: Engine }).engine
}

/**
 * Warns once per process (a `PyventWarning`, code `PYVENT_IGNORED_OPTION`)
 * about options given explicitly that the chosen engine ignores.
 */
export function warnIgnored(engine: Engine, given: NodeOptions): void {
  const ignored = Object.keys(given).filter((key) => {
    if (given[key as keyof NodeOptions] === undefined) return false
    if (engine.name === 'relay') return ENGINE_ONLY[key as keyof NodeOptions] !== undefined
    if (RELAY_ONLY.includes(key as keyof NodeOptions)) return true
    const only = ENGINE_ONLY[key as keyof NodeOptions]
    return only !== undefined && only !== 'url' && only !== engine.name
  })
  if (ignored.length === 0) return
  const key = `${engine.name}:${ignored.join(',')}`
  if (warned.has(key)) return
  warned.add(key)
  const list = ignored.map((name) => `"${name}"`).join(', ')
  process.emitWarning(`Option${ignored.length === 1 ? '' : 's'} ${list} ${ignored.length === 1 ? 'has' : 'have'} no effect on the ${engine.name} engine and ${ignored.length === 1 ? 'is' : 'are'} ignored.`, {
    type: 'PyventWarning',
    code: 'PYVENT_IGNORED_OPTION'
  })
}
