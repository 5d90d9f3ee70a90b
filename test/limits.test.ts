// A node whose maxMessageSize is larger than the relay's learns the relay's limit
// (from its probe answers and heartbeats) and refuses what the relay would drop.
import t from 'tap'
import { MessageTooLargeError, Node } from '../dist/index.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

t.test("send() rejects against the relay's smaller limit, before and after readiness", async (t) => {
  const port = ports.next()
  const relay = new Node({ port, maxMessageSize: 10_000 })
  t.teardown(() => relay.stop())
  t.ok(await relay.startServer())
  const big = { text: 'x'.repeat(20_000) }

  const early = new Node({ port, server: false })
  t.teardown(() => early.stop())
  // The first send waits for readiness, which is when the relay's limit becomes known.
  const first = await early.send('big', big).catch((error: unknown) => error)
  t.ok(first instanceof MessageTooLargeError, 'a send made before readiness is refused once the limit is known')
  t.match(first, { code: 'ERR_PYVENT_MESSAGE_TOO_LARGE', limit: 10_000 })

  const ready = new Node({ port, server: false })
  t.teardown(() => ready.stop())
  await ready.ready()
  await t.rejects(ready.send('big', big), { name: 'MessageTooLargeError', limit: 10_000 }, 'a ready node refuses at once')
  const got = relay.waitFor('small')
  await ready.send('small', { text: 'x'.repeat(5_000) })
  t.equal(((await got).payload as { text: string }).text.length, 5_000, 'what fits still goes through')
  t.equal(await ready.stop(), true, 'nothing was left unconfirmed')
})
