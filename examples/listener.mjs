// Prints every order it hears. Run it, then run sender.mjs in another terminal:
//   node examples/listener.mjs & node examples/sender.mjs
import * as pyvent from 'pyvent'

pyvent.connect('order-food', ({ food, drink = 'water' }) => console.log(`You ordered ${food} and ${drink}!`))

// Optional: ready() resolves once events sent from now on are sure to arrive.
await pyvent.ready()
console.error(`Waiting for orders (${pyvent.isServer() ? 'hosting the relay' : 'through a running relay'})...`)
