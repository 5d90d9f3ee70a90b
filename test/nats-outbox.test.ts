// The NATS outbox (src/nats/outbox.ts) without a server, on a connection that
// does what each test says: what it gives up on is counted in unsent, and a
// publish the client refused is reported, never dropped silently.
import t from 'tap'
import { emptyClientStats } from '../dist/engine.js'
import type { SendFailedError } from '../dist/errors.js'
import { Outbox } from '../dist/nats/outbox.js'
import type { TransportModule } from '../dist/nats/load.js'

const transport = { headers: () => new Map<string, string>() } as unknown as TransportModule

function outbox() {
  const stats = emptyClientStats()
  const reported: SendFailedError[] = []
  const box = new Outbox(transport, 'node-1', () => 1024 * 1024, stats, (error) => reported.push(error))
  return { box, stats, reported }
}

function connection(publish: (subject: string) => void) {
  return { publish } as unknown as Parameters<Outbox['attach']>[0]
}

t.test('a batch published is not counted as unsent', async (t) => {
  const { box, stats, reported } = outbox()
  const subjects: string[] = []
  box.attach(connection((subject) => void subjects.push(subject)))
  for (let i = 0; i < 3; i++) box.event('jobs', 'pyvent', String(i), i)
  box.seal()
  t.equal(subjects.length, 1, 'three events of one tick travel as one message')
  t.same({ unsent: stats.unsent, reported: reported.length }, { unsent: 0, reported: 0 })
})

t.test('a publish the client refuses is reported as SendFailedError and counted in unsent', async (t) => {
  const { box, stats, reported } = outbox()
  box.attach(
    connection(() => {
      throw new Error('MAX_PAYLOAD_EXCEEDED')
    })
  )
  for (let i = 0; i < 3; i++) box.event('jobs', 'pyvent', String(i), i)
  box.seal()
  box.send({ subject: 'reply.x', fields: [], body: '[1]', weight: 1 })
  t.equal(stats.unsent, 4, 'the three events and the reply')
  t.equal(reported.length, 2, 'one report per message')
  t.match(reported[0], { name: 'SendFailedError', code: 'ERR_PYVENT_SEND_FAILED', engine: 'nats', count: 3, message: /MAX_PAYLOAD_EXCEEDED.*stats\(\)\.unsent/ })
})

t.test('what a node stopped before the connection came up is counted in unsent, not reported', async (t) => {
  const { box, stats, reported } = outbox()
  box.event('jobs', 'pyvent', '1', 0)
  box.seal()
  box.event('jobs', 'pyvent', '2', 1)
  box.send({ subject: 'reply.x', fields: [], body: '[1]', weight: 1 })
  box.event('jobs', 'pyvent', '3', 2)
  box.close()
  t.equal(stats.unsent, 4, 'two published batches waiting, one reply, and the batch still open')
  t.equal(reported.length, 0)
})
