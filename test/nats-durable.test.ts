// Durable work groups on JetStream (one nats-server with -js): acked only
// after the handler succeeded, a dead member's events handed to another after
// claimAfter, at most maxDeliveries attempts and then a dead letter with the
// last error, concurrency as the most unfinished events a member pulls.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Node, type NodeOptions } from '../dist/index.js'
import { deadline, fixture, portBlock, spawnNode, until } from './helpers'
import { natsRequirement, NatsServer, startServer } from './nats-cluster'
import { requireSystem } from './requires'

const ports = portBlock(__filename)

function nodeOn(t: Test, url: string, extra: NodeOptions = {}): Node {
  const node = new Node({ url, ...extra })
  t.teardown(() => node.stop())
  return node
}

if (requireSystem(t, natsRequirement('the NATS durable group test'))) {
  let server: NatsServer
  t.before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pyvent-js-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    server = await startServer(t, ports, ['-js', '-sd', dir])
  })

  t.test('a failing event is retried up to maxDeliveries, then dead-lettered with its last error; the others are acked once', async (t) => {
    const member = nodeOn(t, server.url)
    member.on('error', () => undefined)
    const attempts = new Map<string, number[]>()
    let badEventId = ''
    member.connect(
      'charge',
      (payload, event) => {
        const { id } = payload as unknown as { id: string }
        attempts.set(id, [...(attempts.get(id) ?? []), event.seq])
        if (id === 'bad') badEventId = event.id
        if (id === 'bad') throw new RangeError(`card declined (attempt ${attempts.get(id)!.length})`)
      },
      { group: 'billing', durable: { claimAfter: 100, maxDeliveries: 3 } }
    )
    await member.ready()
    const sender = nodeOn(t, server.url)
    await sender.send('charge', { id: 'good' })
    await new Promise((resolve) => setImmediate(resolve))
    await sender.send('charge', { id: 'bad' })
    await sender.flush()
    await until(async () => (await member.stats()).deadLettered === 1, 10_000, 'the bad event to be dead-lettered')
    t.equal(attempts.get('good')?.length, 1, 'the good event ran once and was acked')
    t.equal(attempts.get('bad')?.length, 3, 'the bad one ran maxDeliveries times')
    const letters = await member.deadLetters('charge', 'billing')
    t.equal(letters.length, 1)
    t.match(letters[0], { id: badEventId, signal: 'charge', group: 'billing', sender: 'pyvent', payload: { id: 'bad' }, deliveries: 3, error: 'RangeError: card declined (attempt 3)', node: sender.nodeId })
    t.ok(letters[0]!.deadAt >= letters[0]!.timestamp)
    // Nothing comes back after the dead letter.
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal(attempts.get('bad')?.length, 3, 'not delivered again after it was dead-lettered')
    // Storing the letter outlasts claimAfter (100 ms) at times: the message must not come back and be buried again.
    t.equal((await member.stats()).deadLettered, 1, 'dead-lettered once')
    t.same((await member.deadLetters('charge', 'billing')).map((letter) => letter.error), ['RangeError: card declined (attempt 3)'], 'one letter, with the real error')
  })

  t.test('two durable groups that both fail one event: each keeps its own dead letter', async (t) => {
    const member = nodeOn(t, server.url)
    member.on('error', () => undefined)
    for (const group of ['ledger', 'mailer']) {
      member.connect('refund', () => {
        throw new Error(`${group} is down`)
      }, { group, durable: { claimAfter: 100, maxDeliveries: 1 } })
    }
    await member.ready()
    const sender = nodeOn(t, server.url)
    await sender.send('refund', { id: 9 })
    await sender.flush()
    await until(async () => (await member.stats()).deadLettered === 2, 10_000, 'both groups to dead-letter the event')
    for (const group of ['ledger', 'mailer']) {
      t.match(await member.deadLetters('refund', group), [{ group, payload: { id: 9 }, error: `Error: ${group} is down` }], `${group} has its letter`)
    }
  })

  t.test('an event never finished within claimAfter is given up after maxDeliveries, without running it again', async (t) => {
    const member = nodeOn(t, server.url)
    let runs = 0
    // Room for every delivery: each one starts while the earlier ones still hang.
    member.connect('stuck', () => {
      runs++
      return new Promise(() => undefined)
    }, { group: 'stuckers', concurrency: 10, durable: { claimAfter: 100, maxDeliveries: 3 } })
    await member.ready()
    const sender = nodeOn(t, server.url)
    await sender.send('stuck', { id: 'forever' })
    await sender.flush()
    await until(async () => (await member.stats()).deadLettered === 1, 10_000, 'the stuck event to be given up')
    t.equal(runs, 3, 'delivered maxDeliveries times, not once more')
    const [letter] = await member.deadLetters('stuck', 'stuckers')
    t.match(letter, { payload: { id: 'forever' }, deliveries: 3, error: /^Given up after 3 deliveries that were never finished/ })
  })

  t.test("a dead member's unfinished event goes to another member after claimAfter", async (t) => {
    const child = spawnNode(t, fixture('nats-durable-member.js'), ['parcel', 'couriers', '300'], { PYVENT_URL: server.url })
    await child.line('READY')
    const sender = nodeOn(t, server.url)
    await sender.send('parcel', { n: 1 })
    await sender.flush()
    t.equal(await child.line(/^GOT/), 'GOT {"n":1}', 'the first member took it')
    child.process.kill('SIGKILL')
    await child.exit()
    const survivor = nodeOn(t, server.url)
    const got = deadline(
      new Promise<[unknown, number]>((resolve) => {
        survivor.connect('parcel', (payload) => resolve([payload, Date.now()]), { group: 'couriers', durable: { claimAfter: 300, maxDeliveries: 3 } })
      }),
      10_000,
      'the redelivery'
    )
    const killed = Date.now()
    const [payload] = await got
    t.same(payload, { n: 1 }, 'handed to the surviving member')
    t.ok(Date.now() - killed < 5000)
  })

  t.test('concurrency: a member has at most that many unfinished events', async (t) => {
    const member = nodeOn(t, server.url)
    let running = 0
    let most = 0
    let done = 0
    const finish: (() => void)[] = []
    member.connect(
      'slow-job',
      () => {
        running++
        most = Math.max(most, running)
        return new Promise<void>((resolve) =>
          finish.push(() => {
            running--
            done++
            resolve()
          })
        )
      },
      { group: 'slow', concurrency: 2, durable: true }
    )
    await member.ready()
    const sender = nodeOn(t, server.url)
    for (let i = 0; i < 6; i++) {
      await sender.send('slow-job', { i })
      await new Promise((resolve) => setImmediate(resolve))
    }
    await sender.flush()
    while (done < 6) {
      await until(() => finish.length > 0, 5000, 'a running job')
      t.ok(running <= 2)
      finish.shift()!()
    }
    t.equal(most, 2, 'two at a time, never more')
  })

  t.test('concurrency holds for events sent in one tick (one JetStream message): the rest wait in the member', async (t) => {
    const member = nodeOn(t, server.url)
    let running = 0
    let most = 0
    const runs: number[] = []
    const finish: (() => void)[] = []
    member.connect(
      'batch-job',
      ({ i }: { i: number }) => {
        running++
        most = Math.max(most, running)
        runs.push(i)
        return new Promise<void>((resolve) =>
          finish.push(() => {
            running--
            resolve()
          })
        )
      },
      { group: 'batchers', concurrency: 2, durable: true }
    )
    await member.ready()
    const sender = nodeOn(t, server.url)
    // Sent in one tick: one message of 6 events.
    const sends = []
    for (let i = 0; i < 6; i++) sends.push(sender.send('batch-job', { i }))
    await Promise.all(sends)
    await sender.flush()
    while (runs.length < 6 || finish.length > 0) {
      await until(() => finish.length > 0, 5000, 'a running job')
      t.ok(running <= 2, `${running} running`)
      finish.shift()!()
    }
    t.equal(most, 2, 'two at a time, never more')
    t.same(runs, [0, 1, 2, 3, 4, 5], 'each event ran once, in order')
  })

  t.test('a member that leaves gives the events it had not started back to the group at once', async (t) => {
    const first = nodeOn(t, server.url)
    const started: number[] = []
    const handler = ({ i }: { i: number }): Promise<void> => {
      started.push(i)
      return new Promise<void>(() => undefined)
    }
    first.connect('handover', handler, { group: 'pair', concurrency: 1, durable: { claimAfter: 60_000 } })
    await first.ready()
    const sender = nodeOn(t, server.url)
    await Promise.all([0, 1, 2].map((i) => sender.send('handover', { i })))
    await sender.flush()
    await until(() => started.length === 1, 5000, 'the first member to start one event')
    t.equal(first.disconnect('handover', handler, { group: 'pair' }), 1)
    const second = nodeOn(t, server.url)
    const got: number[] = []
    second.connect('handover', ({ i }: { i: number }) => void got.push(i), { group: 'pair', concurrency: 3, durable: true })
    // claimAfter is a minute: only a message given back at once arrives within the deadline.
    await until(() => got.length >= 3, 10_000, 'the second member to get the batch back')
    t.same(got, [0, 1, 2], 'the whole batch, the started event included (at least once)')
    t.same(started, [0], 'the first member started only one of them')
  })

  t.test('events waiting in a member for room do not use up claimAfter: a batch longer than claimAfter runs once', async (t) => {
    const ran: string[] = []
    let done = 0
    let finishedAll!: () => void
    const allDone = new Promise<void>((resolve) => (finishedAll = resolve))
    // Two members; whichever pulls the batch runs its six events of 150 ms one at a
    // time: 900 ms in all, over claimAfter (400 ms), each alone well under it. The
    // job's duration is the point of the test.
    for (const who of ['a', 'b']) {
      const member = nodeOn(t, server.url)
      member.connect('long-batch', async ({ i }: { i: number }) => {
        ran.push(`${who} ${i}`)
        await new Promise((resolve) => setTimeout(resolve, 150))
        if (++done === 6) finishedAll()
      }, { group: 'queue', concurrency: 1, durable: { claimAfter: 400 } })
      await member.ready()
    }
    const sender = nodeOn(t, server.url)
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => sender.send('long-batch', { i })))
    await sender.flush()
    await deadline(allDone, 10_000, 'six runs')
    const who = ran[0]!.split(' ')[0]
    t.same(ran, [0, 1, 2, 3, 4, 5].map((i) => `${who} ${i}`), 'one member ran each event once; JetStream never handed the batch out again meanwhile')
  })

  t.test('a node that leaves a group and joins again: the old member\'s events finishing later do not count for the new one', async (t) => {
    const node = nodeOn(t, server.url)
    let releaseOld!: () => void
    const oldHandler = (): Promise<void> => new Promise<void>((resolve) => (releaseOld = resolve))
    node.connect('rejoin', oldHandler, { group: 'again', concurrency: 1, durable: { claimAfter: 60_000 } })
    await node.ready()
    const sender = nodeOn(t, server.url)
    await Promise.all([0, 1, 2].map((i) => sender.send('rejoin', { i })))
    await sender.flush()
    await until(() => releaseOld !== undefined, 5000, 'the old member to start an event')
    node.disconnect('rejoin', oldHandler, { group: 'again' })
    let running = 0
    let most = 0
    const got: number[] = []
    const finish: (() => void)[] = []
    node.connect('rejoin', ({ i }: { i: number }) => {
      got.push(i)
      most = Math.max(most, ++running)
      return new Promise<void>((resolve) => finish.push(() => (running--, resolve())))
    }, { group: 'again', concurrency: 1, durable: true })
    await until(() => finish.length === 1, 10_000, 'the new member to start the batch given back')
    // The old member's event ends now: it must not make room in the new member.
    releaseOld()
    while (got.length < 3 || finish.length > 0) {
      await until(() => finish.length > 0, 5000, 'a running event of the new member')
      finish.shift()!()
    }
    t.equal(most, 1, 'one at a time in the new member, whatever the old one finished')
    t.same(got, [0, 1, 2], 'the new member ran the whole batch')
  })

  t.test("from: 'start' reads what the stream kept before the group existed; 'now' does not", async (t) => {
    const sender = nodeOn(t, server.url)
    // A first durable group creates the signal's stream; events sent afterwards are kept.
    const first = nodeOn(t, server.url)
    first.connect('ledger', () => undefined, { group: 'first', durable: true })
    await first.ready()
    await sender.send('ledger', { n: 1 })
    await sender.flush()
    const late = nodeOn(t, server.url)
    const fromStart = new Promise<unknown>((resolve) => late.connect('ledger', (payload) => resolve(payload), { group: 'auditors', durable: { from: 'start' } }))
    t.same(await deadline(fromStart, 5000, 'the stored event'), { n: 1 })
  })

  t.test('maxStreamLength bounds what a signal\'s stream keeps', async (t) => {
    const sender = nodeOn(t, server.url)
    const first = nodeOn(t, server.url, { maxStreamLength: 3 })
    first.connect('bounded', () => undefined, { group: 'first', durable: true })
    await first.ready()
    for (let n = 1; n <= 5; n++) {
      await sender.send('bounded', { n })
      await new Promise((resolve) => setImmediate(resolve))
    }
    await sender.flush()
    const late = nodeOn(t, server.url, { maxStreamLength: 3 })
    const got: unknown[] = []
    const three = new Promise<void>((resolve) =>
      late.connect('bounded', (payload) => {
        got.push(payload)
        if (got.length === 3) resolve()
      }, { group: 'late', durable: { from: 'start' } })
    )
    await deadline(three, 5000, 'the kept events')
    await late.flush()
    t.same(got, [{ n: 3 }, { n: 4 }, { n: 5 }], 'only the newest three were kept')
  })
}
