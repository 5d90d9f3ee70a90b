// @emits: a method call becomes an event whose payload is what the method
// returned (or resolved), without changing what the method returns or throws.
import t from 'tap'
import { defineSignal, Node } from '../dist/index.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

t.test('sync and async methods emit what they return', async (t) => {
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

  const placed = node.waitFor<{ id: number; food: string; count: number }>('order-placed', { sender: 'pyvent' })
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
  t.same(first.payload, { id: 7, food: 'sushi', count: 2 }, 'the payload is the return value')
  t.equal(first.sender, 'pyvent.OrderService', 'the sender defaults to the class')
  t.same((await cooked).payload, 'cooked 7', 'an async method emits what it resolved')
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

t.test('with a typed signal, listeners get exactly what the method returned', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  const OrderFood = defineSignal<{ food: string }>('order-food')
  class Orders {
    @node.emits(OrderFood)
    place(food: string) {
      return { food }
    }

    @node.emits(OrderFood)
    async placeLater(food: string) {
      return { food }
    }

    @node.emits('nothing-to-say')
    ping(): void {}
  }
  const cooked: string[] = []
  let done: () => void
  const both = new Promise<void>((resolve) => (done = resolve))
  node.connect(OrderFood, ({ food }) => {
    cooked.push(`cooking ${food}`)
    if (cooked.length === 2) done()
  }, { sender: 'pyvent.Orders' })
  const empty = node.waitFor('nothing-to-say', { sender: 'pyvent.Orders' })
  await node.ready()
  new Orders().place('udon')
  await new Orders().placeLater('soba')
  new Orders().ping()
  await both
  t.same(cooked.sort(), ['cooking soba', 'cooking udon'], 'the listener destructures what the method returned')
  t.same((await empty).payload, {}, 'a method that returns nothing sends {}')
})

// Compile-time checks: these lines must not type-check (npm test runs tsc on this file).
export function typeChecks(node: Node): void {
  const OrderFood = defineSignal<{ food: string }>('order-food')
  class Wrong {
    // @ts-expect-error the method returns a string, not { food: string }
    @node.emits(OrderFood)
    place(food: string) {
      return food
    }

    // @ts-expect-error the promise resolves a number, not { food: string }
    @node.emits(OrderFood)
    async later() {
      return 3
    }

    // @ts-expect-error nothing returned, but the signal needs { food: string }
    @node.emits(OrderFood)
    nothing(): void {}

    @node.emits(OrderFood)
    right(food: string) {
      return { food }
    }
  }
  void Wrong
}
