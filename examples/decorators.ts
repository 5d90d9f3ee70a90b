// Decorators (TypeScript 5 standard decorators): @connect turns methods into
// listeners, @emits turns method calls into events. Run it with
//   npm run example:decorators
// Prints "north cooks udon", "south cooks udon", then the emitted order, and exits.
import { defineSignal, Node } from 'pyvent'

const node = new Node({ port: Number(process.env.PYVENT_PORT ?? 50020) })
const OrderFood = defineSignal<{ food: string }>('order-food')
const OrderPlaced = defineSignal<{ id: number; food: string }>('order-placed')

class Kitchen {
  constructor(readonly name: string) {}

  @node.connect(OrderFood)
  cook({ food }: { food: string }) {
    console.log(`${this.name} cooks ${food}`)
  }
}

class Orders {
  // The payload is what the method returns; the compiler checks it against OrderPlaced.
  @node.emits(OrderPlaced)
  place(food: string) {
    return { id: 1, food }
  }
}

async function main(): Promise<void> {
  const kitchens = [new Kitchen('north'), new Kitchen('south')]
  const placed = node.waitFor(OrderPlaced, { sender: 'pyvent.Orders' })
  await node.ready()
  await node.send(OrderFood, { food: 'udon' })
  new Orders().place('ramen')
  const { payload } = await placed
  console.log(`emitted: order ${payload.id} for ${payload.food} (${kitchens.length} kitchens)`)
  await node.stop()
}

void main()
