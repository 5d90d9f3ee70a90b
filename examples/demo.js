'use strict'
// `npm run demo`: starts the listener example, waits until it is ready, runs
// the sender example, shows what the listener printed, then stops the listener.
// Exits with code 1, saying why, if any step fails.
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const { join } = require('node:path')
const { createInterface } = require('node:readline')

const run = (name, options) => spawn(process.execPath, [join(__dirname, name)], { stdio: ['ignore', 'pipe', 'pipe'], ...options })

/** The first line of `stream`, or an error once `child` has exited without one. */
async function firstLine(stream, child, what) {
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the listener exited (code ${code}) before ${what}`)
  })
  exited.catch(() => undefined)
  const [line] = await Promise.race([once(createInterface({ input: stream }), 'line'), exited])
  return line
}

async function main() {
  const listener = run('listener.mjs')
  try {
    const status = await firstLine(listener.stderr, listener, 'it was ready')
    console.log(`listener: ${status}`)
    if (!status.startsWith('Waiting for orders')) throw new Error('the listener could not start (above)')
    const heard = firstLine(listener.stdout, listener, 'it heard the order')
    heard.catch(() => undefined)
    const sender = run('sender.mjs', { stdio: 'inherit' })
    const [code] = await once(sender, 'exit')
    if (code !== 0) throw new Error(`the sender failed (exit code ${code})`)
    console.log('sender:   sent one order and exited with code 0')
    console.log(`listener: ${await heard}`)
  } finally {
    listener.kill()
  }
}

main().catch((error) => {
  console.error(`demo failed: ${error.message}`)
  process.exitCode = 1
})
