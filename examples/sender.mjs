// Sends one order and exits as soon as it is delivered.
import * as pyvent from 'pyvent'

await pyvent.send('order-food', { food: 'sushi', drink: 'sake' })
