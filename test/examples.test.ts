// Every example in examples/ runs, prints what its comment promises and exits by itself.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { createServer } from 'node:net'
import { portBlock, spawnNode } from './helpers'

const ports = portBlock(__filename)
const examples = join(__dirname, '..', 'examples')

const cases: [string, string[]][] = [
  ['request-reply.mjs', ['1 + 2 = 3', 'the responder said: TypeError: add takes two numbers']],
  ['typed-signal.mjs', ['refused: A listener for "order-food" failed: an order needs a food', 'cooking sushi']],
  ['build/decorators.js', ['north cooks udon', 'south cooks udon', 'emitted: order 1 for ramen (2 kitchens)']]
]

for (const [file, expected] of cases) {
  t.test(file, async (t) => {
    const path = join(examples, file)
    t.ok(existsSync(path), `${file} exists (npm test compiles examples/*.ts first)`)
    const child = spawnNode(t, path, [], { PYVENT_PORT: String(ports.next()) })
    t.equal(await child.exit(), 0)
    t.same(child.lines.slice().sort(), expected.slice().sort())
  })
}

t.test('work-group.mjs: six jobs, each handled once, two per worker', async (t) => {
  const child = spawnNode(t, join(examples, 'work-group.mjs'), [], { PYVENT_PORT: String(ports.next()) })
  t.equal(await child.exit(), 0)
  const jobs = child.lines.filter((line) => line.includes(' resizes '))
  t.same(jobs.map((line) => line.split(' ').at(-1)).sort(), [1, 2, 3, 4, 5, 6].map((i) => `photo-${i}.jpg`))
  // Each worker has room for one job at first, so each takes at least one.
  for (const worker of ['north', 'south', 'east']) t.ok(jobs.some((line) => line.startsWith(worker)), `${worker} took a job`)
  t.equal(child.lines.at(-1), 'the workers handled 6 jobs, the plain listener saw 6')
})

t.test('demo.js: the listener and sender examples as two processes', async (t) => {
  const child = spawnNode(t, join(examples, 'demo.js'), [], { PYVENT_PORT: String(ports.next()) })
  t.equal(await child.exit(), 0)
  t.match(child.lines, [/^listener: Waiting for orders/, /^sender: +sent one order and exited with code 0$/, /^listener: You ordered sushi and sake!$/])
})

t.test('demo.js fails with exit code 1, saying why, when the listener cannot start', async (t) => {
  const port = ports.next()
  // Something that is not a relay holds both ports.
  for (const held of [port, port + 1]) {
    const server = createServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')))
    await new Promise<void>((resolve) => server.listen(held, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => server.close(resolve)))
  }
  const child = spawnNode(t, join(examples, 'demo.js'), [], { PYVENT_PORT: String(port) })
  t.equal(await child.exit(), 1)
  t.match(child.stderr.join('\n'), /demo failed: the listener (could not start|exited)/)
  t.notMatch(child.lines.join('\n'), /sent one order/)
})
