'use strict'
// `npm run demo`: starts the listener example, waits until it is ready, runs
// the sender example, shows what the listener printed, then stops the listener.
// Exits with code 1, saying why, if any step fails.
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const { join } = require('node:path')
const { createInterface } = require('node:readline')

const run = (name, options) => spawn(process.execPath, [join(__dirname, name)], { stdio: ['ignore', 'pipe', 'pipe'], ...options })

/** How long the listener may take to hear the order. */
const ORDER_MS = 10_000

async function main() {
  const listener = run('listener.mjs')
  const stderr = []
  const stdout = []
  const lines = (stream, into) => {
    const wanted = []
    createInterface({ input: stream }).on('line', (line) => {
      into.push(line)
      wanted.shift()?.(line)
    })
    // The next line, or an error once the listener's output has ended without one.
    return (what) =>
      into.length > wanted.length
        ? Promise.resolve(into[wanted.length])
        : new Promise((resolve, reject) => {
            wanted.push(resolve)
            listener.once('close', (code) => reject(new Error(`the listener ended (code ${code}) before ${what}: ${stderr.join(' ')}`)))
          })
  }
  const nextError = lines(listener.stderr, stderr)
  const nextOutput = lines(listener.stdout, stdout)
  let timer
  try {
    const status = await nextError('it was ready')
    console.log(`listener: ${status}`)
    if (!status.startsWith('Waiting for orders')) throw new Error('the listener could not start (above)')
    const heard = nextOutput('it heard the order')
    heard.catch(() => undefined)
    const sender = run('sender.mjs', { stdio: 'inherit' })
    const [code] = await once(sender, 'exit')
    if (code !== 0) throw new Error(`the sender failed (exit code ${code})`)
    console.log('sender:   sent one order and exited with code 0')
    const late = new Promise((resolve, reject) => (timer = setTimeout(() => reject(new Error(`the listener did not hear the order within ${ORDER_MS} ms`)), ORDER_MS)))
    console.log(`listener: ${await Promise.race([heard, late])}`)
  } finally {
    clearTimeout(timer)
    listener.kill()
  }
}

main().catch((error) => {
  console.error(`demo failed: ${error.message}`)
  process.exitCode = 1
})
