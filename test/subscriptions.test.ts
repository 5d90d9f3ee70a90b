// Any number of subscriptions: ZeroMQ queues at most 1,000 subscription messages
// by default and drops the rest silently; pyvent must lose none, and ready()
// must prove the last subscription made before it was called.
import t from 'tap'
import { Node } from '../dist/index.js'
import { deadline, listenerAndSender, portBlock } from './helpers'

const ports = portBlock(__filename)
const COUNT = 10_000

t.test(`${COUNT} signals connected in one tick, and ${COUNT} connect/disconnect pairs`, async (t) => {
  const port = ports.next()
  // 20,000 events behind 30,000 subscription changes: a loaded machine may need more than the default linger to flush them.
  const { listener, sender } = listenerAndSender(t, port, { linger: 60_000 })
  const seen = new Set<number>()
  let removedSeen = 0
  let allSeen: () => void
  const all = new Promise<void>((resolve) => (allSeen = resolve))
  for (let i = 0; i < COUNT; i++) {
    listener.connect(`live-${i}`, () => {
      seen.add(i)
      if (seen.size === COUNT) allSeen()
    })
  }
  const removed = (): void => void removedSeen++
  for (let i = 0; i < COUNT; i++) {
    listener.connect(`gone-${i}`, removed)
    listener.disconnect(`gone-${i}`, removed)
  }
  await deadline(listener.ready(), 20_000, 'ready() after 30,000 subscription changes')
  await sender.ready()
  // The removed signals first: from one sender, order holds, so anything delivered
  // on them would arrive before the last live event.
  for (let i = 0; i < COUNT; i++) void sender.send(`gone-${i}`, {})
  for (let i = 0; i < COUNT; i++) void sender.send(`live-${i}`, {})
  await sender.flush()
  await deadline(all, 20_000, `one event on each of ${COUNT} signals`)
  t.equal(seen.size, COUNT, 'every live signal received its event')
  t.equal(removedSeen, 0, 'no removed signal received anything')
  t.ok((await listener.stats()).relay!.topics >= COUNT, 'the relay holds every live subscription')
})

t.test('ready() proves the subscription made just before it, after thousands of others', async (t) => {
  const port = ports.next()
  const { listener, sender } = listenerAndSender(t, port)
  await listener.ready()
  const noop = (): void => undefined
  for (let i = 0; i < 3000; i++) listener.connect(`filler-${i}`, noop)
  const last = listener.waitFor('the-last-one')
  await listener.ready()
  await sender.send('the-last-one', { ok: true })
  t.same((await deadline(last, 10_000, 'the event on the last subscription')).payload, { ok: true })
})
