/**
 * Checks what `connect`, `waitFor`, `disconnect` and `deadLetters` are given,
 * and works out where a listener is filed: under its signal, under Any, or, for
 * a work-group member, under its member topic with the group's settings.
 *
 * @module
 */
import { checkCallOptions } from './call-options'
import { checkName } from './payload'
import { groupTopic, MAX_TOPIC_BYTES } from './topics'
import type { ListenOptions } from './dispatcher'
import type { DurableSettings, Engine } from './engine'
import { InvalidArgumentError, UnsupportedError } from './errors'
import { Any, AnySignal, SignalRef, signalName } from './signal'

/** The defaults of `DurableOptions`. */
export const DURABLE_DEFAULTS: Readonly<DurableSettings> = Object.freeze({ from: 'now', claimAfter: 30_000, maxDeliveries: 5 })

/**
 * Validates a signal and listen options; returns the topic the listener is
 * filed under: the signal name, the node's member topic of the group, or Any.
 */
export function listenTopic(
  signal: SignalRef | AnySignal,
  options: ListenOptions | undefined,
  node: string,
  engine: Engine,
  method: 'connect' | 'waitFor' | 'disconnect'
): string | AnySignal {
  const name = signalName(signal)
  if (name !== Any) checkName(name, 'signal')
  checkCallOptions(options, method)
  const sender = options?.sender
  if (sender !== undefined && sender !== Any) checkName(sender, 'sender filter')
  const group = options?.group
  const concurrency = options?.concurrency
  if (concurrency !== undefined) {
    if (group === undefined) throw new InvalidArgumentError('The concurrency option applies to work-group listeners only: give a group too.')
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 100_000) {
      throw new InvalidArgumentError(`The concurrency of a work-group listener must be an integer from 1 to 100000, got ${String(concurrency)}.`)
    }
  }
  const durable = options?.durable
  if (durable !== undefined && durable !== false && group === undefined) {
    throw new InvalidArgumentError('The durable option applies to work-group listeners only: give a group too.')
  }
  if (group === undefined) return name
  checkName(group, 'group')
  if (name === Any) throw new InvalidArgumentError('A work group needs one signal, not Any.')
  // The engine deals events to members by signal alone: a member that then refused
  // the sender would lose the event for the whole group.
  if (sender !== undefined && sender !== Any) throw new InvalidArgumentError('A work-group listener takes events from every sender; drop the sender option.')
  resolveDurable(durable, engine)
  const topic = groupTopic(name, group, node)
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) throw new InvalidArgumentError('The signal and group names are too long together for a work group.')
  return topic
}

/** A group's durable settings, or `undefined` for a plain group; a clear error when the engine or a value will not do. */
export function resolveDurable(option: ListenOptions['durable'], engine: Engine): DurableSettings | undefined {
  if (option === undefined || option === false) return undefined
  if (!engine.durable) {
    throw new UnsupportedError(
      engine.name,
      `A durable work group needs storage, which the ${engine.name} engine does not have: use a Redis or NATS URL (option "url" or PYVENT_URL), or drop "durable".`
    )
  }
  if (option === true) return { ...DURABLE_DEFAULTS }
  if (typeof option !== 'object' || option === null) throw new InvalidArgumentError('The durable option must be true, false or an object.')
  const settings: DurableSettings = { ...DURABLE_DEFAULTS }
  for (const [key, value] of Object.entries(option)) {
    if (value === undefined) continue
    if (key === 'from') {
      if (value !== 'now' && value !== 'start') throw new InvalidArgumentError(`durable.from must be "now" or "start", got ${String(value)}.`)
      settings.from = value
    } else if (key === 'claimAfter' || key === 'maxDeliveries') {
      const min = key === 'claimAfter' ? 10 : 1
      if (!Number.isSafeInteger(value) || (value as number) < min) throw new InvalidArgumentError(`durable.${key} must be an integer of at least ${min}, got ${String(value)}.`)
      settings[key] = value as number
    } else throw new InvalidArgumentError(`Unknown durable option "${key}". Known: from, claimAfter, maxDeliveries.`)
  }
  return settings
}

/** The signal name and count of a `deadLetters()` call; an `UnsupportedError` on an engine that stores nothing. */
export function deadLetterQuery(signal: SignalRef, group: string, options: { count?: number }, engine: Engine): [string, number] {
  const name = checkName(signalName(signal), 'signal')
  checkName(group, 'group')
  checkCallOptions(options, 'deadLetters')
  const count = options.count ?? 100
  if (!Number.isSafeInteger(count) || count < 1) throw new InvalidArgumentError(`The count of deadLetters must be a positive integer, got ${String(count)}.`)
  if (!engine.durable) {
    throw new UnsupportedError(engine.name, `The ${engine.name} engine stores no events, so it has no dead letters: durable groups need a Redis or NATS URL.`)
  }
  return [name, count]
}
