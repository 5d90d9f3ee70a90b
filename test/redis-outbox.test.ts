// The Redis outbox (src/redis/outbox.ts) without a server, on a client that
// answers what each test says: what it gives up on is reported and counted,
// never dropped silently, and a reply that is not its command's is not taken.
import t from 'tap'
import { SimpleError, SocketClosedUnexpectedlyError } from 'redis'
import { emptyClientStats } from '../dist/engine.js'
import type { Link } from '../dist/redis/link.js'
import { Outbox } from '../dist/redis/outbox.js'

/** A link whose client answers each command with the next of `replies` (an Error rejects). */
function scripted(replies: unknown[]) {
  const commands: string[][] = []
  const client = {
    isReady: true,
    sendCommand(args: string[]): Promise<unknown> {
      commands.push(args)
      const reply = replies.shift()
      return reply instanceof Error ? Promise.reject(reply) : Promise.resolve(reply)
    }
  }
  const link = {
    client,
    resets: 0,
    reset(): void {
      link.resets++
    }
  }
  const stats = emptyClientStats()
  const errors: Error[] = []
  const waiters: (() => void)[] = []
  const settled = (): void => {
    if (outbox.inflight === 0) for (const resolve of waiters.splice(0)) resolve()
  }
  const outbox: Outbox = new Outbox(link as unknown as Link, 'node-1', new Map(), stats, 1000, settled, (error) => void errors.push(error))
  /** Resolves once nothing is in flight (answered, or given up). */
  const idle = (): Promise<void> => new Promise((resolve) => (waiters.push(resolve), settled()))
  return { outbox, link, commands, stats, errors, idle }
}

/** Queues `count` events on `signal` in one tick (one batch) and waits until Redis answered or they were given up. */
async function batch(outbox: Outbox, signal: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) void outbox.publish(signal, 'tester', JSON.stringify({ i }))
  outbox.seal()
  await outbox.drained()
}

t.test('a batch Redis refuses is reported as SendFailedError and counted in unsent', async (t) => {
  const { outbox, commands, stats, errors } = scripted([new SimpleError("OOM command not allowed when used memory > 'maxmemory'.")])
  await batch(outbox, 'orders', 3)
  t.equal(commands.length, 1, 'not sent again: the same refusal would come back')
  t.equal(stats.unsent, 3)
  t.equal(errors.length, 1)
  t.match(errors[0], { name: 'SendFailedError', code: 'ERR_PYVENT_SEND_FAILED', engine: 'redis', count: 3, message: /3 events of "orders".*OOM/ })
  t.equal(outbox.settled, outbox.queued, 'flush() does not wait for it')
})

t.test('a batch whose connection broke is sent again, and not reported', async (t) => {
  const { outbox, commands, stats, errors } = scripted([new SocketClosedUnexpectedlyError(), 1])
  await batch(outbox, 'orders', 2)
  t.equal(commands.length, 2)
  t.same([stats.unsent, errors], [0, []])
})

t.test('a reply that is not the script\'s is not taken: the connection is made again and the batch sent again', async (t) => {
  // What node-redis did with a batch written into a socket that had just closed: it
  // matched the batch to the next connection's first reply, CLIENT SETNAME's "OK".
  const { outbox, link, commands, stats, errors } = scripted(['OK', 1])
  await batch(outbox, 'orders', 2)
  t.equal(link.resets, 1, 'the client out of step is given up')
  t.same(
    commands.map((args) => args[0]),
    ['EVALSHA', 'EVALSHA'],
    'the batch is sent again'
  )
  t.same([stats.unsent, errors], [0, []])
})

t.test('what a stopped node had not had answered is counted in unsent', async (t) => {
  const { outbox, commands, stats, errors, idle } = scripted([new SocketClosedUnexpectedlyError()])
  for (let i = 0; i < 4; i++) void outbox.publish('orders', 'tester', '1')
  outbox.seal()
  // Sealed and failed once (its rejection handled once the microtasks ran): waiting to be
  // sent again when the node stops. Then one more event, never sealed.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(commands.length, 1)
  void outbox.publish('orders', 'tester', '2')
  outbox.close(false)
  await idle()
  t.equal(commands.length, 1, 'not sent again once stopped')
  t.equal(stats.unsent, 5, 'the 4 of the batch and the 1 never sealed')
  t.same(errors, [], 'not reported as refused: stop() resolving false says it')
})
