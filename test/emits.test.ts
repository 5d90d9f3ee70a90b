// @emits: a method call becomes an event, without changing what the method returns or throws.
import t from 'tap'
import { EmittedCall, Node } from '../dist/index.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

t.test('sync and async methods emit their arguments and result', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())

  class OrderService {
    @node.emits('order-placed')
    place(food: string, count: number) {
      return { id: 7, food, count }
    }

    @node.emits('order-cooked', { sender: 'kitchen' })
    async cook(id: number) {
      return `cooked ${id}`
    }

    @node.emits('order-failed')
    fail(): never {
      throw new RangeError('out of rice')
    }

    @node.emits('order-failed')
    async failLater(): Promise<never> {
      throw new RangeError('out of fish')
    }
  }

  const placed = node.waitFor<EmittedCall<[string, number], { id: number }>>('order-placed', { sender: 'pyvent' })
  const cooked = node.waitFor('order-cooked', { sender: 'kitchen' })
  const failed = node.waitFor('order-failed', { timeout: 60_000 })
  await node.ready()
  const service = new OrderService()
  t.same(service.place('sushi', 2), { id: 7, food: 'sushi', count: 2 }, 'the return value is untouched')
  const promise = service.cook(7)
  t.ok(promise instanceof Promise)
  t.equal(await promise, 'cooked 7')
  t.throws(() => service.fail(), RangeError, 'a throw is untouched')
  await t.rejects(service.failLater(), RangeError, 'a rejection is untouched')

  const first = await placed
  t.same(first.payload, { args: ['sushi', 2], result: { id: 7, food: 'sushi', count: 2 } })
  t.equal(first.sender, 'pyvent.OrderService', 'the sender defaults to the class')
  t.same((await cooked).payload, { args: [7], result: 'cooked 7' })
  // Nothing was emitted for the failing calls: the next order-failed event is this marker.
  await node.send('order-failed', { marker: true }, { sender: 'pyvent.OrderService' })
  t.same((await failed).payload, { marker: true })
})

t.test('a payload that cannot be sent is reported, not thrown at the caller', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  const reported = new Promise<Error>((resolve) => node.once('error', resolve))
  class Maker {
    @node.emits('made')
    make() {
      return () => 'a function is not data'
    }
  }
  t.type(new Maker().make(), 'function')
  t.match(await reported, { code: 'ERR_PYVENT_INVALID_PAYLOAD' })
  t.throws(() => node.emits(''), { name: 'TypeError' })
  t.throws(() => node.emits('x', { sender: '' }), { name: 'TypeError', message: /sender/ })
  const decorate = node.emits('x') as unknown as (value: unknown, context: { kind: string }) => void
  t.throws(() => decorate(() => undefined, { kind: 'getter' }), { name: 'TypeError', message: /class methods only/ })
})
