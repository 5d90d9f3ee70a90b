// A process ends exactly as it would without pyvent: process.exit(n), an
// uncaught exception or an unhandled rejection give Node's own exit code and
// stack, in a process that hosts the relay, in one that does not, and in a
// worker thread (whose end never takes the process with it). Nothing from
// ZeroMQ's native layer on stderr (zeromq.js issue 411 aborted with SIGABRT).
import t, { Test } from 'tap'
import { Node } from '../dist/index.js'
import { Child, fixture, portBlock, spawnNode, until } from './helpers'

const ports = portBlock(__filename)

const cases = [
  { path: 'exit0', code: 0, stderr: undefined },
  { path: 'exit3', code: 3, stderr: undefined },
  { path: 'throw', code: 1, stderr: /Error: bug at top level/ },
  { path: 'listener-throw', code: 1, stderr: /Error: bug in a listener/ },
  { path: 'reject', code: 1, stderr: /Error: unhandled bug/ }
] as const

/** A node of this test process hosting the relay on `port`, stopped in teardown. */
async function hostRelay(t: Test, port: number): Promise<Node> {
  const relay = new Node({ port })
  t.teardown(() => relay.stop())
  t.ok(await relay.startServer(), 'the test process hosts the relay')
  return relay
}

function noNativeAbort(t: Test, child: Child, what: string): void {
  const text = child.stderr.join('\n')
  t.notMatch(text, /terminate called|Napi::Error|Aborted/, `${what}: nothing from the native layer on stderr`)
  t.equal(child.process.signalCode, null, `${what}: not killed by a signal`)
}

for (const role of ['host', 'client'] as const) {
  for (const { path, code, stderr } of cases) {
    t.test(`a process that ${role === 'host' ? 'hosts the relay' : 'does not host the relay'}: ${path}`, async (t) => {
      const port = ports.next()
      if (role === 'client') {
        await hostRelay(t, port)
      }
      const child = spawnNode(t, fixture('exit-path.js'), [String(port), role, path])
      t.equal(await child.line(/^READY/), `READY ${role === 'host'}`)
      t.equal(await child.exit(), code, `exit code ${code}, as without pyvent`)
      noNativeAbort(t, child, path)
      if (stderr !== undefined) t.match(child.stderr.join('\n'), stderr, 'the error and its stack are on stderr')
    })
  }
}

t.test('process.exit() right after send() says on stderr what may be lost and how to avoid it', async (t) => {
  const port = ports.next()
  await hostRelay(t, port)
  const child = spawnNode(t, fixture('exit-path.js'), [String(port), 'client', 'exit0'])
  t.equal(await child.exit(), 0)
  t.match(child.stderr.join('\n'), /pyvent: 1 message \(events, requests or replies\) sent by this process may be lost: it exited .*await pyvent\.flush\(\)/)
})

t.test('a crash right after send() says what may be lost, without advice about process.exit()', async (t) => {
  const port = ports.next()
  await hostRelay(t, port)
  const child = spawnNode(t, fixture('exit-path.js'), [String(port), 'client', 'send-throw'])
  t.equal(await child.exit(), 1, "Node's exit code for an uncaught exception")
  const stderr = child.stderr.join('\n')
  t.match(stderr, /Error: bug after a send/, 'the error is on stderr')
  t.match(stderr, /pyvent: 1 message \(events, requests or replies\) sent by this process may be lost: it crashed before the relay \(or server\) confirmed it\./)
  t.notMatch(stderr, /process\.exit/, 'no advice that does not apply to a crash')
})

t.test('process.exit() right after a reply arrived warns about nothing: the reply proves the request', async (t) => {
  const port = ports.next()
  const relay = await hostRelay(t, port)
  relay.respond('add', ({ a, b }: { a: number; b: number }) => a + b)
  await relay.ready() // the responder is live at the relay before the child asks
  const child = spawnNode(t, fixture('exit-path.js'), [String(port), 'client', 'request-exit'])
  t.equal(await child.exit(), 0)
  t.ok(child.lines.includes('REPLY 3'), 'the reply arrived')
  t.notMatch(child.stderr.join('\n'), /may be lost/, 'no warning about the answered request')
})

t.test('a responder quiet for a second proves its replies: a later process.exit() warns about nothing', async (t) => {
  const port = ports.next()
  const relay = await hostRelay(t, port)
  // Its debug lines say when the quiet proof came back (the event this test waits for).
  const child = spawnNode(t, fixture('quiet-responder.js'), [String(port)], { DEBUG: 'pyvent:client' })
  t.equal(await child.line(/^READY/), 'READY')
  for (let i = 0; i < 3; i++) t.equal(await relay.request('add', { a: i, b: 1 }), i + 1)
  await until(() => child.stderr.some((line) => line.includes('quiet proof: 3 message(s) confirmed')), 10_000, 'the quiet proof')
  child.process.stdin!.write('exit\n')
  t.equal(await child.exit(), 0)
  t.notMatch(child.stderr.join('\n'), /may be lost/, 'no warning: the relay confirmed all three replies')
})

/** A sender whose relay is gone: it sends one event that nothing can confirm (end-quiet.js). */
async function orphanSender(t: Test, port: number, highWaterMark: number): Promise<Child> {
  const relay = await hostRelay(t, port)
  const child = spawnNode(t, fixture('end-quiet.js'), [String(port), String(highWaterMark)], { DEBUG: 'pyvent:client' })
  t.equal(await child.line('READY'), 'READY')
  await relay.stop()
  child.process.stdin!.write('send\n')
  t.equal(await child.line('SENT'), 'SENT')
  return child
}

const lostLine = /pyvent: 1 message \(events, requests or replies\) sent by this process may be lost: the relay \(or server\) did not confirm it within linger \(300 ms\) as the script ended/

t.test('a script that ends by itself while its quiet proof waits for a dead relay ends at once, and says what may be lost', async (t) => {
  const child = await orphanSender(t, ports.next(), 64)
  // The node has been quiet for a second: it probes in the background, and the relay is gone.
  await until(() => child.stderr.some((line) => line.includes('quiet with 1 message(s) unconfirmed: probing')), 10_000, 'the quiet proof')
  child.process.stdin!.write('quit\n')
  t.equal(await child.exit(), 0)
  const stderr = child.stderr.join('\n')
  const ended = stderr.indexOf('BEFORE-EXIT')
  const answered = stderr.indexOf('quiet proof: no answer')
  t.ok(ended >= 0 && (answered < 0 || ended < answered), "the process had nothing left to do before the quiet proof's own timeout: the probe did not hold it")
  t.match(stderr, lostLine, 'the flush at the end gave up after linger, and said so')
})

t.test("a quiet proof never leaves a send pending on a dead relay's full queue (the process still ends)", async (t) => {
  // A queue of one message: probes sent again and again would fill it, and a send waiting for room holds the process.
  const child = await orphanSender(t, ports.next(), 1)
  await until(() => child.stderr.some((line) => line.includes('quiet proof: no answer')), 15_000, 'a quiet proof to go unanswered')
  child.process.stdin!.write('quit\n')
  t.equal(await child.exit(20_000), 0, 'the script ended by itself')
  const stderr = child.stderr.join('\n')
  t.equal(stderr.split('quiet with').length - 1, 1, 'one quiet proof: a relay that did not answer is not asked again until something new is sent')
  t.match(stderr, lostLine)
})

for (const path of ['terminate', 'exit'] as const) {
  for (const hosting of [true, false]) {
    t.test(`a worker thread ${hosting ? 'hosting the relay' : 'as a client'}: ${path === 'terminate' ? 'worker.terminate()' : 'process.exit(5) inside it'} ends the thread alone`, async (t) => {
      const port = ports.next()
      if (!hosting) {
        await hostRelay(t, port)
      }
      const child = spawnNode(t, fixture('exit-worker.js'), [String(port), path])
      t.equal(await child.line(/^READY/), `READY ${hosting}`)
      t.equal(await child.line(/^WORKER/), `WORKER ${path === 'terminate' ? 1 : 5}`, 'the worker ended with its own code')
      await child.line('MAIN ALIVE')
      t.equal(await child.exit(), 0, 'the process lives on and exits by itself')
      noNativeAbort(t, child, path)
    })
  }
}
