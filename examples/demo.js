'use strict'
// `npm run demo`: starts the listener example, waits until it is ready, runs
// the sender example, shows what the listener printed, then stops the listener.
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const { join } = require('node:path')
const { createInterface } = require('node:readline')

const run = (name, options) => spawn(process.execPath, [join(__dirname, name)], { stdio: ['ignore', 'pipe', 'pipe'], ...options })

async function main() {
  const listener = run('listener.mjs')
  const stderr = createInterface({ input: listener.stderr })
  const stdout = createInterface({ input: listener.stdout })
  const [status] = await once(stderr, 'line')
  console.log(`listener: ${status}`)
  const heard = once(stdout, 'line')
  const sender = run('sender.mjs', { stdio: 'inherit' })
  const [code] = await once(sender, 'exit')
  console.log(`sender:   sent one order and exited with code ${code}`)
  const [line] = await heard
  console.log(`listener: ${line}`)
  listener.kill()
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
