'use strict'
// Cold start: the whole life of a script that only sends one event (numbered by argv[2]) to
// a listener already running on PYVENT_PORT. pyvent stops the node once the process is idle,
// after a probe proved the event went through the relay, so exit means delivered.
const { send } = require('pyvent')

send('order-food', { i: Number(process.argv[2]), food: 'sushi', drink: 'sake' }).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
