// A signal with a runtime validator: a payload that does not fit is refused
// before the listener runs. (In TypeScript, defineSignal<T>() also makes the
// compiler check payloads and handlers: see examples/decorators.ts.)
// Prints "refused: ..." for the bad order, then "cooking sushi", and exits.
import { defineSignal, Node } from 'pyvent'

const OrderFood = defineSignal('order-food', (payload) => {
  if (typeof payload?.food !== 'string') throw new TypeError('an order needs a food')
  return payload
})

const node = new Node({ port: Number(process.env.PYVENT_PORT ?? 50020) })
node.on('error', (error) => console.log(`refused: ${error.message}`))
node.connect(OrderFood, ({ food }) => console.log(`cooking ${food}`))
await node.ready()
// A sender that ignores the types (a bare name, another language) is caught by the validator.
await node.send('order-food', { drink: 'tea' })
await node.send(OrderFood, { food: 'sushi' })
// stop() flushes: both events come back through the relay before it resolves.
await node.stop()
