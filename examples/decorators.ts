// Decorators (TypeScript 5 standard decorators): @connect turns methods into
// listeners, @emits turns method calls into events. Run it with
//   npm run example:decorators
// Prints "north cooks udon", "south cooks udon", then the emitted call, and exits.
import { defineSignal, EmittedCall, Node } from 'pyvent'

const node = new Node({ port: Number(process.env.PYVENT_PORT ?? 50020) })
const OrderFood = defineSignal<{ food: string }>('order-food')

class Kitchen {
  constructor(readonly name: string) {}

  @node.connect(OrderFood)
  cook({ food }: { food: string }) {
    console.log(`${this.name} cooks ${food}`)
  }
}

class Orders {
  @node.emits('order-placed')
  place(food: string) {
    return { id: 1, food }
  }
}

async function main(): Promise<void> {
  const kitchens = [new Kitchen('north'), new Kitchen('south')]
  const placed = node.waitFor<EmittedCall<[string], { id: number; food: string }>>('order-placed', { sender: 'pyvent.Orders' })
  await node.ready()
  await node.send(OrderFood, { food: 'udon' })
  new Orders().place('ramen')
  const { payload } = await placed
  console.log(`emitted: place(${payload.args.join(', ')}) returned ${JSON.stringify(payload.result)} (${kitchens.length} kitchens)`)
  await node.stop()
}

void main()
