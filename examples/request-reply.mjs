// Request and reply in one script: a responder (registered with respond(); what
// it returns is the reply) and a requester. Prints "1 + 2 = 3", then "the responder said: ..." and exits.
import * as pyvent from 'pyvent'

pyvent.respond('add', ({ a, b }) => {
  if (typeof a !== 'number' || typeof b !== 'number') throw new TypeError('add takes two numbers')
  return a + b
})

console.log(`1 + 2 = ${await pyvent.request('add', { a: 1, b: 2 }, { timeout: 2000 })}`)
try {
  await pyvent.request('add', { a: 'one', b: 2 })
} catch (error) {
  console.log(`the responder said: ${error.remoteName}: ${error.message}`)
}
await pyvent.stop()
