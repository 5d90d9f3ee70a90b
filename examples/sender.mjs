// Sends one order. The process exits by itself once the order is delivered.
import * as pyvent from 'pyvent'

await pyvent.send('order-food', { food: 'sushi', drink: 'sake' })
