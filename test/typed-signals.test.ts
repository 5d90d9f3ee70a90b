// Typed signals: the compiler checks payloads and handlers (the @ts-expect-error
// lines are compiled by `tsc -p test/tsconfig.json` in `npm test`: if a misuse
// starts compiling, the unused directive fails the build), and an optional
// validator refuses malformed payloads at run time.
import t from 'tap'
import { defineSignal, Node, PyventEvent, RemoteError } from '../dist/index.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)

const OrderFood = defineSignal<{ food: string; drink?: string }>('order-food')
const Add = defineSignal<[number, number]>('add', (payload) => {
  if (!Array.isArray(payload) || payload.length !== 2 || !payload.every((n) => typeof n === 'number')) {
    throw new TypeError('add takes two numbers')
  }
  return payload as [number, number]
})

// Compile-time checks. This function is never called; it only has to type-check.
async function typeChecks(node: Node): Promise<void> {
  node.connect(OrderFood, ({ food, drink }) => `${food.toUpperCase()} ${drink ?? ''}`)
  // @ts-expect-error food is a string, not a number
  node.connect(OrderFood, (payload: { food: number }) => payload)
  // @ts-expect-error the handler reads a property the payload does not have
  node.connect(OrderFood, (payload) => payload.price)
  await node.send(OrderFood, { food: 'sushi' })
  // @ts-expect-error drink must be a string
  await node.send(OrderFood, { food: 'sushi', drink: 3 })
  // @ts-expect-error food is required
  await node.send(OrderFood, { drink: 'tea' })
  const event: PyventEvent<{ food: string; drink?: string }> = await node.waitFor(OrderFood)
  // @ts-expect-error the payload of a waited-for event is typed
  const wrong: number = (await node.waitFor(OrderFood)).payload
  const sum: number = await node.request<number, [number, number]>(Add, [1, 2])
  // @ts-expect-error a request's payload is checked too
  await node.request(Add, ['1', 2])
  // Bare names stay flexible: the handler's annotation decides.
  node.connect('anything', (n: number) => n + 1)
  node.connect('anything', ({ food, drink = 'water' }) => `${String(food)} ${String(drink)}`)
  class Kitchen {
    @node.connect(OrderFood)
    cook({ food }: { food: string }) {
      return food
    }
    // @ts-expect-error the decorated method must accept the signal's payload
    @node.connect(OrderFood)
    wrong(payload: { food: number }) {
      return payload
    }
  }
  void [event, wrong, sum, Kitchen]
}
void typeChecks

t.test('typed signals work at run time like their names', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  const got = node.waitFor(OrderFood)
  await node.ready()
  await node.send(OrderFood, { food: 'sushi', drink: 'sake' })
  const event = await got
  t.equal(event.signal, 'order-food')
  t.equal(event.payload.food, 'sushi')
})

t.test('a validator refuses malformed payloads from untyped senders', async (t) => {
  const node = new Node({ port: ports.next() })
  t.teardown(() => node.stop())
  const errors: Error[] = []
  node.on('error', (error) => errors.push(error))
  const sums: number[] = []
  node.connect(Add, ([a, b]) => {
    sums.push(a + b)
  })
  node.respond(Add, ([a, b]) => a + b)
  const last = node.waitFor('add', { send: { signal: 'add', payload: [2, 3] } })
  await last
  t.same(sums, [5])
  // A sender that ignores the types (a foreign client, a bare name): refused, not crashed.
  await t.rejects(node.request('add', ['two', 3], { timeout: 5000 }), RemoteError)
  const refused = await node.request('add', { not: 'a pair' }).catch((e: RemoteError) => e)
  t.match(refused, { remoteName: 'TypeError', message: 'add takes two numbers', code: 'ERR_PYVENT_REMOTE' })
  t.equal(await node.request(Add, [20, 22]), 42, 'a valid request is answered')
  t.ok((await node.stats()).invalid >= 2, 'refused payloads are counted')
  t.same(sums, [5], 'requests go to the responder only, never to plain listeners')
})

t.test('defineSignal checks its arguments', async (t) => {
  t.throws(() => defineSignal(3 as unknown as string), { name: 'TypeError' })
  t.throws(() => defineSignal('x', {} as never), { name: 'TypeError', message: /parse\(\) method/ })
  const schema = { parse: (value: unknown) => value as string }
  t.equal(defineSignal('y', schema).validate, schema, 'any object with parse() is a validator')
})
