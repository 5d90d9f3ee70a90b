/**
 * Entry point of a relay process, started by the node that hosts the relay
 * (see relay-host.ts). It relays until its host asks it to stop; if its host
 * ends first (exit, crash, SIGKILL, a terminated worker thread), it goes on
 * relaying for the nodes still subscribed and exits as soon as none is.
 * @internal
 * @module
 */
import createDebug from 'debug'
import { Relay } from './relay'
import type { RelayConfig, RelayStats } from './relay-types'

const debug = createDebug('pyvent:relay')

/** Messages from the host. */
export type ToRelay = { type: 'start'; config: RelayConfig } | { type: 'stop' } | { type: 'stats' }
/** Messages to the host. */
export type ToHost = { type: 'loaded' } | { type: 'bound' } | { type: 'busy'; reason: string } | { type: 'stats'; stats: RelayStats } | { type: 'stopped' }

let relay: Relay | undefined
let ending = false

function post(message: ToHost): void {
  if (process.connected) process.send?.(message)
}

async function end(): Promise<void> {
  if (ending) return
  ending = true
  await relay?.stop()
  post({ type: 'stopped' })
  // Nothing else holds the process: it exits once ZeroMQ has lingered.
  if (process.connected) process.disconnect()
}

async function start(config: RelayConfig): Promise<void> {
  process.title = `pyvent-relay ${config.options.host}:${config.options.port}`
  const candidate = new Relay(config)
  try {
    await candidate.bind()
  } catch (error) {
    debug('bind failed: %s', (error as Error).message)
    post({ type: 'busy', reason: (error as Error).message })
    process.disconnect()
    return
  }
  relay = candidate
  post({ type: 'bound' })
  relay.run().catch((error: Error) => {
    // The pull socket failed: exit, so the host (or a survivor) takes over.
    debug('relay failed: %s', error.message)
    process.exit(1)
  })
}

if (process.send === undefined) {
  process.stderr.write('pyvent: relay-process.js is started by pyvent itself (run `pyvent serve` for a standalone relay).\n')
  process.exitCode = 2
} else {
  process.on('message', (message: ToRelay) => {
    if (message.type === 'start' && relay === undefined) void start(message.config)
    else if (message.type === 'stats' && relay !== undefined) post({ type: 'stats', stats: relay.stats })
    else if (message.type === 'stop') void end()
  })
  debug('relay process %d loaded (V8 flags: %s)', process.pid, process.execArgv.join(' ') || 'none')
  post({ type: 'loaded' })
  process.on('disconnect', () => {
    if (ending) return
    // The host is gone without stopping the relay. Go on relaying while nodes use it.
    if (relay === undefined || relay.idle) void end()
    else {
      debug('host gone; relaying until the last node leaves')
      relay.onIdle = () => void end()
    }
  })
}
