// The NATS engine on a real three-server cluster: nodes attached to different
// servers exchange events, share group work and answer requests; names NATS
// would misread travel safely; a server killed mid-stream loses its clients to
// the others, which reconnect by themselves and count what was lost.
import t, { type Test } from 'tap'
import { Any, Node, NodeOptions } from '../dist/index.js'
import { deadline, portBlock, until } from './helpers'
import { monitor, natsRequirement, NatsServer, startCluster } from './nats-cluster'
import { requireSystem } from './requires'

const ports = portBlock(__filename)

function nodeOn(t: Test, url: string, extra: NodeOptions = {}): Node {
  const node = new Node({ url, ...extra })
  t.teardown(() => node.stop())
  return node
}

/** Resolves once `count` items arrived in `items` (pushed by a listener that calls `wake`). */
function collector<T>(): { items: T[]; push(item: T): void; reach(count: number, what: string, ms?: number): Promise<void> } {
  const items: T[] = []
  let wake = (): void => undefined
  return {
    items,
    push(item) {
      items.push(item)
      wake()
    },
    reach(count, what, ms = 20_000) {
      return deadline(
        new Promise<void>((resolve) => {
          wake = () => items.length >= count && resolve()
          wake()
        }),
        ms,
        what
      )
    }
  }
}

if (requireSystem(t, natsRequirement('the NATS cluster test'))) {
  let servers: NatsServer[] = []
  t.before(async () => {
    servers = await startCluster(t, ports)
  })
  const at = (i: number): string => servers[i]!.url

  t.test('nodes on different servers exchange events; names NATS would misread arrive intact', async (t) => {
    const listener = nodeOn(t, at(0))
    const sender = nodeOn(t, at(1))
    const names = ['order food', 'a.b.c', 'wild*card', 'tail>', '%41 percent', 'ünïcødé ✓', '.', 'x..y', 'tab\there', '日本']
    const got = collector<[string, string, unknown]>()
    for (const name of names) listener.connect(name, (payload, event) => got.push([event.signal, event.sender, payload]), { sender: 'who' })
    await listener.ready()
    // A server learns another's subscriptions asynchronously: see the propagation test.
    await waitForInterest(servers[1]!, names[names.length - 1]!)
    for (const name of names) await sender.send(name, { name }, { sender: 'who.a b.*.>.ü..' })
    await got.reach(names.length, 'every oddly named event')
    t.same(
      got.items,
      names.map((name) => [name, 'who.a b.*.>.ü..', { name }]),
      'signal, sender and payload intact, in order'
    )
    t.equal((await listener.stats()).malformed, 0)
  })

  t.test('a node listening to Any and to a signal gets each event once', async (t) => {
    const listener = nodeOn(t, at(0))
    const sender = nodeOn(t, at(1))
    const seen = collector<string>()
    listener.connect(Any, (payload) => seen.push(`any ${String((payload as unknown as { n: number }).n)}`))
    listener.connect('counted', (payload) => seen.push(`counted ${String((payload as unknown as { n: number }).n)}`))
    await listener.ready()
    await sender.send('counted', { n: 1 })
    await sender.send('other', { n: 2 })
    await sender.send('counted', { n: 3 })
    await sender.send('last', { n: 4 })
    // Any hears every event; the last one comes after every copy of the others would have.
    await seen.reach(6, 'the events')
    await until(() => seen.items.includes('any 4'), 5000, 'the last event')
    t.same(seen.items.slice().sort(), ['any 1', 'any 2', 'any 3', 'any 4', 'counted 1', 'counted 3'])
    const stats = await listener.stats()
    t.equal(stats.received, 4, 'four events received, not six')
    t.equal(stats.duplicates, 0)
  })

  t.test('interest reaches the other servers within milliseconds, and ready() waits that out', async (t) => {
    // NATS itself: a subscription made and flushed at server 1, a publisher at server 3
    // publishing until the first message arrives.
    const { connect } = require('@nats-io/transport-node') as typeof import('@nats-io/transport-node')
    const far = await connect({ servers: at(2) })
    const near = await connect({ servers: at(0) })
    t.teardown(async () => {
      await far.close()
      await near.close()
    })
    const delays: number[] = []
    for (let round = 0; round < 10; round++) {
      let arrived = false
      const subscription = near.subscribe(`propagation.${round}`, {
        callback: () => {
          arrived = true
        }
      })
      await near.flush()
      const start = process.hrtime.bigint()
      while (!arrived) {
        far.publish(`propagation.${round}`, '')
        await far.flush()
      }
      delays.push(Number(process.hrtime.bigint() - start) / 1e6)
      subscription.unsubscribe()
    }
    t.comment(`subscription at server 1 -> known at server 3: ${delays.map((d) => d.toFixed(2)).join(', ')} ms`)
    t.ok(Math.max(...delays) < 25, 'within the 25 ms a probe waits out after a fresh subscription')

    // pyvent: after ready(), the very first event from a node on another server arrives.
    const sender = nodeOn(t, at(2))
    await sender.ready()
    for (let round = 0; round < 10; round++) {
      const listener = nodeOn(t, at(0))
      const got = collector<unknown>()
      listener.connect('first-after-ready', (payload) => got.push(payload))
      await listener.ready()
      await sender.send('first-after-ready', { round })
      await got.reach(1, `the first event of round ${round}`, 5000)
      t.same(got.items, [{ round }], `round ${round}: the one event sent right after ready() arrived`)
      await listener.stop()
    }
  })

  t.test('a work group spread over three servers: each event to exactly one member', async (t) => {
    const counts = [0, 0, 0]
    const seen = new Map<number, number>()
    const done = collector<number>()
    const members = [0, 1, 2].map((i) => {
      const node = nodeOn(t, at(i))
      node.connect(
        'job',
        (payload) => {
          counts[i]!++
          seen.set(payload as unknown as number, (seen.get(payload as unknown as number) ?? 0) + 1)
          done.push(payload as unknown as number)
        },
        { group: 'workers' }
      )
      return node
    })
    await Promise.all(members.map((m) => m.ready()))
    const sender = nodeOn(t, at(0))
    await waitForInterest(servers[0]!, 'job', 3)
    for (let i = 0; i < 120; i++) {
      await sender.send('job', i)
      // One event per NATS message: a batch goes to one member as a whole.
      await new Promise((resolve) => setImmediate(resolve))
    }
    await done.reach(120, 'all 120 jobs')
    t.equal(seen.size, 120)
    t.ok([...seen.values()].every((n) => n === 1), 'no job ran twice')
    t.ok(counts.every((n) => n > 0), `every member got work: ${counts.join('/')}`)
  })

  t.test('a durable group on the clustered JetStream: members on two servers, each event handled once', async (t) => {
    const seen = new Map<number, number>()
    const done = collector<number>()
    const members = [0, 1].map((i) => {
      const node = nodeOn(t, at(i))
      node.connect(
        'ledger-entry',
        (payload) => {
          const n = payload as unknown as number
          seen.set(n, (seen.get(n) ?? 0) + 1)
          done.push(n)
        },
        { group: 'bookkeepers', durable: true }
      )
      return node
    })
    await Promise.all(members.map((m) => m.ready()))
    const sender = nodeOn(t, at(2))
    for (let i = 0; i < 40; i++) {
      await sender.send('ledger-entry', i)
      await new Promise((resolve) => setImmediate(resolve))
    }
    await done.reach(40, 'all 40 entries', 15_000)
    t.equal(seen.size, 40)
    t.ok([...seen.values()].every((n) => n === 1), 'none handled twice')
  })

  t.test('requests cross servers to one responder each; no responders known at once', async (t) => {
    const overheard: unknown[] = []
    const responders = [1, 2].map((i) => {
      const node = nodeOn(t, at(i))
      node.respond('whoami', () => i)
      // A plain listener of the same signal: requests are not events, it hears none.
      node.connect('whoami', (payload) => overheard.push(payload), { sender: Any })
      return node
    })
    await Promise.all(responders.map((r) => r.ready()))
    const requester = nodeOn(t, at(0))
    await deadline(waitForResponders(requester, 'whoami'), 5000, 'the responders known at server 1')
    const answers = await Promise.all(Array.from({ length: 20 }, () => requester.request<number>('whoami', {})))
    t.ok(answers.every((a) => a === 1 || a === 2), 'every request answered once, by a responder')
    t.same(overheard, [], 'no listener saw a request')
    const start = Date.now()
    await t.rejects(requester.request('nobody-here', {}, { timeout: 10_000 }), { code: 'ERR_PYVENT_NO_RESPONDERS' })
    t.ok(Date.now() - start < 2000, 'from the server, not the timeout')
  })

  t.test('a server killed mid-stream: its clients reconnect to the others by themselves, and what was lost is counted', async (t) => {
    // The listener names only the server about to die: it learns the others from the cluster.
    const listener = nodeOn(t, at(1))
    const errors: Error[] = []
    listener.on('error', (error) => errors.push(error))
    const got = collector<number>()
    listener.connect('stream', (payload) => got.push(payload as unknown as number))
    await listener.ready()
    const sender = nodeOn(t, at(0))
    await waitForInterest(servers[0]!, 'stream')
    let sent = 0
    const total = 400
    let killed = false
    while (sent < total) {
      await sender.send('stream', sent++)
      await new Promise((resolve) => setImmediate(resolve))
      if (!killed && got.items.length >= 100) {
        killed = true
        await servers[1]!.kill()
      }
    }
    t.ok(killed, 'the server died mid-stream')
    // After the reconnect the listener's subscription is back: the tail of the stream arrives.
    // Paced sends (one every few ms) until one arrives; the loop ends at its own deadline
    // too, so it never goes on sending after a failure.
    const end = Date.now() + 15_000
    while (!got.items.includes(sent - 1) && Date.now() < end) {
      await sender.send('stream', sent++)
      await sender.flush()
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    t.ok(got.items.includes(sent - 1), 'events reach the listener again after the reconnect')
    const stats = await listener.stats()
    t.ok(stats.disconnects >= 1, `disconnects counted: ${stats.disconnects}`)
    t.equal(stats.received + stats.gaps, sent, `every event either arrived or is counted lost (received ${stats.received}, gaps ${stats.gaps})`)
    t.match(errors[0], { code: 'ERR_PYVENT_CONNECTION_LOST', engine: 'nats' }, 'the loss reported through "error"')
    t.comment(`lost ${stats.gaps} of ${sent} events while reconnecting`)
  })
}

/**
 * Resolves once `server` knows `count` subscribers of `signal`'s events: its own
 * clients' (/subsz) plus those its routes told it about (/routez, one entry per
 * route and subject, whatever the number of subscribers behind it).
 */
async function waitForInterest(server: NatsServer, signal: string, count = 1): Promise<void> {
  const filter = `pyvent.e.${escape(signal)}.>`
  const known = async (): Promise<number> => {
    const local = (await monitor(server, `/subsz?subs=1&test=${encodeURIComponent(`pyvent.e.${escape(signal)}.pyvent`)}`)) as { total?: number }
    const routes = ((await monitor(server, '/routez?subs=1')) as { routes?: { subscriptions_list?: string[] }[] }).routes ?? []
    return (local.total ?? 0) + routes.reduce((n, route) => n + (route.subscriptions_list ?? []).filter((entry) => entry.split(' ')[0] === filter).length, 0)
  }
  await until(async () => (await known()) >= count, 5000, `${count} subscriber(s) of ${signal} known at ${server.name}`)
}

async function waitForResponders(node: Node, signal: string): Promise<void> {
  for (;;) {
    try {
      await node.request(signal, {}, { timeout: 2000 })
      return
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_PYVENT_NO_RESPONDERS') throw error
    }
  }
}

function escape(name: string): string {
  // The engine's own escaping, as a foreign client would implement it (docs/PROTOCOL.md).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../dist/nats/subjects.js') as { escapeToken(name: string): string }).escapeToken(name)
}
