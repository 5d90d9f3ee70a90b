// connect() as a TypeScript 5 standard decorator on class methods.
import t from 'tap'
import { Node, PyventEvent } from '../dist/index.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

t.test('each instance method is connected, bound to its instance', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  let resolveBoth: () => void
  const both = new Promise<void>((resolve) => (resolveBoth = resolve))
  const seen: string[] = []

  class Kitchen {
    constructor(readonly name: string) {}

    @node.connect('order-food')
    cook({ food }: { food: string }, event: PyventEvent<{ food: string }>) {
      seen.push(`${this.name} cooks ${food} for ${event.sender}`)
      if (seen.length === 2) resolveBoth()
    }
  }

  const kitchens = [new Kitchen('north'), new Kitchen('south')]
  await node.ready()
  await node.send('order-food', { food: 'udon' })
  await both
  t.same(seen.sort(), ['north cooks udon for pyvent', 'south cooks udon for pyvent'])
  t.equal(kitchens.length, 2)
})

t.test('the decorator takes listen options and refuses non-methods', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  const got: unknown[] = []
  let resolveGot: () => void
  const arrived = new Promise<void>((resolve) => (resolveGot = resolve))

  class Audit {
    @node.connect('audit', { sender: 'billing' })
    record(payload: { amount: number }) {
      got.push(payload.amount)
      resolveGot()
    }
  }
  new Audit()
  await node.ready()
  await node.send('audit', { amount: 1 })
  await node.send('audit', { amount: 2 }, { sender: 'billing.eu' })
  await arrived
  t.same(got, [2], 'only the billing sender reached the method')

  const decorate = node.connect('x') as unknown as (value: unknown, context: { kind: string }) => void
  t.throws(() => decorate(() => undefined, { kind: 'field' }), { name: 'TypeError', message: /class methods only/ })
})
