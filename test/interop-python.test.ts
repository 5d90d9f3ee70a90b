// Interoperability with a foreign client: test/fixtures/pyclient.py, written
// from docs/PROTOCOL.md alone, on Debian's python3-zmq. It sends events to a
// pyvent listener, receives a pyvent node's events, answers a pyvent request,
// asks pyvent a question and works in a work group for a pyvent sender. If the
// document is wrong or incomplete, this fails.
import { spawnSync } from 'node:child_process'
import t, { Test } from 'tap'
import { v5 as uuidv5 } from 'uuid'
import { Any, Node, PyventEvent } from '../dist/index.js'
import { Child, deadline, fixture, portBlock, spawnProcess } from './helpers'
import { requireSystem } from './requires'

// The system interpreter: python3 on PATH may be a pyenv without zmq.
// PYVENT_TEST_PYTHON names another (one without zmq shows the skip).
const PYTHON = process.env.PYVENT_TEST_PYTHON ?? '/usr/bin/python3'
const SCRIPT = fixture('pyclient.py')
const ports = portBlock(__filename)

/** pyclient.py's milestone lines are `<LABEL> <data>`: read them by label. */
interface Python {
  child: Child
  /** Resolves with the data of the first line (seen or future) labelled `label`. */
  line(label: string, ms?: number): Promise<string>
  /** The data of every line so far labelled `label`. */
  all(label: string): string[]
  /** Resolves with the exit code once the script has exited. */
  exit(ms?: number): Promise<number | null>
}

/** Runs pyclient.py with `args`, killed in teardown if still running. */
function spawnPython(t: Test, args: string[]): Python {
  // -I: ignore PYTHON* variables and user site-packages, so only the system packages are used.
  const child = spawnProcess(t, PYTHON, ['-I', '-u', SCRIPT, ...args], { name: `pyclient.py ${args.join(' ')}` })
  const labelled = (label: string) => (line: string) => line === label || line.startsWith(label + ' ')
  const data = (label: string, line: string) => line.slice(label.length + 1)
  return {
    child,
    line: (label, ms) => child.line(labelled(label), ms).then((line) => data(label, line)),
    all: (label) => child.lines.filter(labelled(label)).map((line) => data(label, line)),
    exit: (ms) => child.exit(ms)
  }
}

/** A node hosting the relay on a fresh port, ready, stopped in teardown. */
async function relayNode(t: Test): Promise<{ node: Node; port: number }> {
  const port = ports.next()
  const node = new Node({ port })
  t.teardown(() => node.stop())
  t.ok(await node.startServer(), 'the pyvent node hosts the relay')
  return { node, port }
}

/** Why PYTHON cannot import zmq, in one line, or `undefined` when it can. */
function zmqMissing(): string | undefined {
  const probe = spawnSync(PYTHON, ['-I', '-c', 'import zmq'], { encoding: 'utf8' })
  if (probe.error === undefined && probe.status === 0) return undefined
  const why = probe.error?.message ?? (probe.stderr.trim().split('\n').pop() || `exit code ${String(probe.status ?? probe.signal)}`)
  return `${PYTHON} -I -c 'import zmq' failed: ${why}`
}

// Skipped without python3-zmq, but failed where CI is set: CI installs it (.ci/run),
// and this test is the proof that the protocol document is enough.
const requirement = { what: 'the Python interop test', needs: 'Debian package python3-zmq', check: zmqMissing }
if (requireSystem(t, requirement)) {
  t.test('a pyvent listener receives the events of a Python client', async (t) => {
    const { node, port } = await relayNode(t)
    const events: PyventEvent[] = []
    let arrived!: () => void
    const delivered = new Promise<void>((resolve) => (arrived = resolve))
    // The default filter is the sender "pyvent": it takes "pyvent.python" and refuses "python.other".
    node.connect('py-order', (_payload, event) => {
      events.push(event)
      arrived()
    })
    await node.ready()

    const payload = { food: 'sushi', count: 2, hot: false, extras: ['wasabi', 'gari'], note: 'café ☕', none: null }
    const python = spawnPython(t, [
      String(port),
      'send',
      'py-order',
      'python.other',
      JSON.stringify({ food: 'filtered out' }),
      'pyvent.python',
      JSON.stringify(payload)
    ])
    const sent = JSON.parse(await python.line('SENT')) as { node: string; events: { seq: number; sender: string; id: string }[] }
    t.equal(await python.exit(), 0, 'the Python client exits cleanly')
    await deadline(delivered, 10_000, 'delivery of the Python event')

    t.equal(events.length, 1, 'only the event from a sender below "pyvent" reaches the listener')
    const [event] = events
    t.equal(event?.signal, 'py-order')
    t.equal(event?.sender, 'pyvent.python')
    t.same(event?.payload, payload)
    t.equal(event?.node, sent.node, 'the node id is the Python client’s')
    t.equal(event?.seq, 1, 'the second event of the (node, signal) stream, whatever its sender')
    t.equal(event?.id, sent.events[1]?.id, 'pyvent derives the event id the Python client computed')
    t.ok(Math.abs((event?.timestamp ?? 0) - Date.now()) < 60_000, 'the timestamp is in milliseconds since the epoch')

    const stats = await node.stats()
    t.equal(stats.received, 2, 'both events arrived; the sender filter refused one')
    t.equal(stats.malformed, 0, 'pyvent decoded every message of the Python client')
    t.equal(stats.gaps + stats.duplicates, 0, 'the sequence numbers are contiguous')
  })

  t.test('a Python client receives the events of a pyvent node', async (t) => {
    const { node, port } = await relayNode(t)
    await node.ready()
    const python = spawnPython(t, [String(port), 'receive', 'py-news', '3'])
    await python.line('READY')

    // Sent in one turn of the event loop, so they travel as one batch.
    const payloads = [{ headline: 'first' }, ['second', 2], 'third ✓']
    await Promise.all(payloads.map((payload) => node.send('py-news', payload)))

    const done = JSON.parse(await python.line('DONE')) as Record<string, number>
    t.equal(await python.exit(), 0, 'the Python client exits cleanly')
    t.same(done, { gaps: 0, duplicates: 0, malformed: 0 }, 'the Python client decoded everything, in order')
    t.equal(python.all('HEARTBEAT').length, 1, 'the Python client heard the relay’s heartbeat')

    const got = python.all('GOT').map((line) => JSON.parse(line) as Record<string, unknown>)
    t.same(
      got.map(({ signal, sender, node, seq, payload }) => ({ signal, sender, node, seq, payload })),
      payloads.map((payload, seq) => ({ signal: 'py-news', sender: 'pyvent', node: node.nodeId, seq, payload }))
    )
    t.same(
      got.map(({ id }) => id),
      [0, 1, 2].map((seq) => uuidv5(`py-news\0${seq}`, node.nodeId)),
      'event ids are UUID v5 of `${signal}\\0${seq}` in the namespace of the node id'
    )
  })

  t.test('a Python client answers the requests of a pyvent node', async (t) => {
    const { node, port } = await relayNode(t)
    await node.ready()
    const python = spawnPython(t, [String(port), 'respond', 'py-add', '2'])
    await python.line('READY')

    t.equal(await node.request('py-add', { a: 2, b: 3 }), 5, 'an ok reply resolves with its value')
    await t.rejects(
      node.request('py-add', { a: 2, b: 'three' }),
      { name: 'RemoteError', code: 'ERR_PYVENT_REMOTE', remoteName: 'TypeError', message: 'a and b must be numbers' },
      'an error reply rejects with the remote error'
    )
    t.equal(await python.exit(), 0, 'the Python client exits cleanly')
    t.equal(python.all('ANSWERED').length, 2)
    t.equal((await node.stats()).malformed, 0, 'pyvent decoded every reply')
  })

  t.test('a pyvent responder answers the requests of a Python client', async (t) => {
    const { node, port } = await relayNode(t)
    node.respond('js-add', (payload) => {
      const { a, b } = payload as { a: unknown; b: unknown }
      if (typeof a !== 'number' || typeof b !== 'number') throw new TypeError('a and b must be numbers')
      return a + b
    })
    await node.ready()
    const python = spawnPython(t, [String(port), 'request', 'js-add', '{"a":20,"b":22}', '{"a":"x","b":1}'])
    t.equal(await python.exit(), 0, 'the Python client exits cleanly')
    t.same(
      python.all('REPLY').map((line) => JSON.parse(line) as unknown),
      [
        { ok: true, value: 42 },
        { ok: false, value: { name: 'TypeError', message: 'a and b must be numbers' } }
      ]
    )
  })

  t.test('a Python client asking a signal nobody serves gets the relay\'s "no responders" reply', async (t) => {
    const { node, port } = await relayNode(t)
    await node.ready()
    const python = spawnPython(t, [String(port), 'request', 'nobody-serves', '{}'])
    t.equal(await python.exit(), 0)
    t.match(JSON.parse(python.all('REPLY')[0] ?? 'null'), { ok: false, noResponders: true, value: { name: 'NoRespondersError' } })
  })

  t.test('a Python client in a work group is dealt a pyvent sender\'s events one at a time', async (t) => {
    const { node, port } = await relayNode(t)
    await node.ready()
    const count = 8
    const python = spawnPython(t, [String(port), 'member', 'py-jobs', 'cooks', String(count)])
    // READY: the member's probe came back behind its subscription and its first
    // report, so the relay deals it (or keeps for it) every event sent from now on.
    await python.line('READY')

    // Sent in one turn of the event loop: one batch, which the relay splits into events.
    const payloads = Array.from({ length: count }, (_, i) => ({ job: i }))
    await Promise.all(payloads.map((payload) => node.send('py-jobs', payload)))

    const done = JSON.parse(await python.line('DONE')) as Record<string, number>
    t.equal(await python.exit(), 0, 'the Python client exits cleanly')
    t.same(done, { overlaps: 0, gaps: 0, duplicates: 0, malformed: 0 }, 'never two events at once with concurrency 1, and nothing malformed')
    const got = python.all('GOT').map((line) => JSON.parse(line) as Record<string, unknown>)
    t.same(
      got.map(({ signal, group, sender, node, seq, events, payload }) => ({ signal, group, sender, node, seq, events, payload })),
      payloads.map((payload, seq) => ({ signal: 'py-jobs', group: 'cooks', sender: 'pyvent', node: node.nodeId, seq, events: 1, payload })),
      'every event, in order, each alone in its message with its own sequence number'
    )
    t.same(
      got.map(({ id }) => id),
      payloads.map((_, seq) => uuidv5(`py-jobs\0${seq}`, node.nodeId)),
      'the Python member derives the ids pyvent listeners would'
    )
    const relay = (await node.stats()).relay
    t.equal(relay?.groupWaiting, 0, 'nothing is left waiting at the relay')
    t.equal(relay?.malformed, 0, 'the relay took every report of the Python member')
  })
}
