/**
 * The dead-letter store of durable groups: one JetStream stream,
 * `pyvent_dead`, subjects `pyvent.d.<signal>.<group>`, each message one
 * event (`[payload]`) with its origin and the last error in headers.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node'
import type { EventMessage } from '../codec'
import type { DeadLetter } from '../engine'
import type { ResolvedOptions } from '../options'
import { JetStreamModule, loadJetStream, loadTransport } from './load'
import { deadLetterSubject, ROOT } from './subjects'
import { H_DEAD_AT, H_DELIVERIES, H_ERROR, H_GROUP, H_NODE, H_SEQ, H_TIME, H_VERSION } from './wire'

/** The dead-letter stream. */
export const DEAD_STREAM = 'pyvent_dead'
/** The sender of a dead letter (its subject names signal and group). */
const H_SENDER = 'Pyvent-Sender'
const H_ID = 'Pyvent-Id'

/** One event to bury. */
export interface Burial {
  message: EventMessage
  index: number
  /** The event's id (`PyventEvent.id`), as `deadLetters()` gives it. */
  id: string
  /** Unique to the event in its stream: JetStream stores a second letter with the same key (within its duplicate window) not at all. */
  key: string
  signal: string
  group: string
  error: string
  deliveries: number
}

const made = new WeakSet<NatsConnection>()

async function ensureStream(nc: NatsConnection, js: JetStreamModule, options: ResolvedOptions): Promise<void> {
  if (made.has(nc)) return
  const jsm = await js.jetstreamManager(nc)
  await jsm.streams
    .add({ name: DEAD_STREAM, description: 'pyvent dead letters', subjects: [`${ROOT}.d.>`], max_msgs: options.maxStreamLength, discard: js.DiscardPolicy.Old })
    .catch(async (error: Error) => {
      await jsm.streams.info(DEAD_STREAM).catch(() => {
        throw error
      })
    })
  made.add(nc)
}

/** Stores one dead letter; resolves once JetStream has it: `true`, or `false` when it had it already (same key). */
export async function deadLetter(nc: NatsConnection, js: JetStreamModule, options: ResolvedOptions, burial: Burial): Promise<boolean> {
  await ensureStream(nc, js, options)
  const { message, index } = burial
  const h = loadTransport(options.url as string).headers()
  h.set(H_VERSION, '1')
  h.set(H_ID, burial.id)
  h.set(H_NODE, message.node)
  h.set(H_SEQ, String(message.seq + index))
  h.set(H_TIME, String(message.time))
  h.set(H_SENDER, message.sender)
  h.set(H_GROUP, burial.group)
  // Header values end at a line break.
  h.set(H_ERROR, burial.error.replace(/[\r\n]+/g, ' '))
  h.set(H_DELIVERIES, String(burial.deliveries))
  h.set(H_DEAD_AT, String(Date.now()))
  const ack = await js.jetstream(nc).publish(deadLetterSubject(burial.signal, burial.group), JSON.stringify([message.payloads[index]]), { headers: h, msgID: burial.key })
  return !ack.duplicate
}

/** The newest `count` dead letters of a group, newest first. */
export async function readDeadLetters(nc: NatsConnection, options: ResolvedOptions, signal: string, group: string, count: number): Promise<DeadLetter[]> {
  const js = loadJetStream(options.url as string)
  await ensureStream(nc, js, options)
  const client = js.jetstream(nc)
  const consumer = await client.consumers.get(DEAD_STREAM, { filter_subjects: deadLetterSubject(signal, group) })
  const letters: DeadLetter[] = []
  try {
    const info = await consumer.info(true)
    let left = info.num_pending
    while (left > 0) {
      const messages = await consumer.fetch({ max_messages: Math.min(left, 1000), expires: 2000 })
      let got = 0
      for await (const msg of messages) {
        got++
        left--
        const h = msg.headers
        let payload: unknown
        try {
          payload = (JSON.parse(msg.string()) as unknown[])[0]
        } catch {
          continue
        }
        letters.push({
          id: h?.get(H_ID) ?? String(msg.seq),
          signal,
          group,
          sender: h?.get(H_SENDER) ?? '',
          node: h?.get(H_NODE) ?? '',
          seq: Number(h?.get(H_SEQ) ?? 0),
          timestamp: Number(h?.get(H_TIME) ?? 0),
          payload,
          deliveries: Number(h?.get(H_DELIVERIES) ?? 0),
          error: h?.get(H_ERROR) ?? '',
          deadAt: Number(h?.get(H_DEAD_AT) ?? 0)
        })
        if (left === 0) break
      }
      if (got === 0) break
    }
  } finally {
    await consumer.delete().catch(() => undefined)
  }
  return letters.reverse().slice(0, count)
}
