// Prints every order it hears. Run it, then run sender.mjs in another terminal.
import * as pyvent from 'pyvent'

pyvent.connect('order-food', ({ food, drink = 'water' }) => console.log(`You ordered ${food} and ${drink}!`))
