// Hostile and broken input at both relay ports while real traffic flows: the relay
// and every listener survive, every real event arrives once and in order, the
// malformed messages are counted and logged under `debug`, nothing is evaluated,
// nothing reaches a prototype. PYVENT_FUZZ_SEED=<n> replays another sequence.
import { once } from 'node:events'
import { connect as tcpConnect, Socket as TcpSocket } from 'node:net'
import { format } from 'node:util'
import createDebug from 'debug'
import t, { Test } from 'tap'
import { Push, XSubscriber } from 'zeromq'
import { Any, Node, PyventEvent, senderMatches } from '../dist/index.js'
import { decode, decodeGroupState } from '../dist/codec.js'
import { MAX_TOPIC_BYTES, requestOrigin } from '../dist/topics.js'
import { deadline, portBlock, until } from './helpers'

const ports = portBlock(__filename)
const SEED = Number(process.env.PYVENT_FUZZ_SEED ?? 20_261_121)
/** Small, so that oversized frames are cheap to make. */
const MAX_MESSAGE_SIZE = 4096
/** What the sockets accept per frame: maxMessageSize plus 4 KiB for topic and header (frameLimit in src/zmq/sockets.ts). */
const FRAME_LIMIT = MAX_MESSAGE_SIZE + 4096
/** At least this many of the messages thrown at the pull port are malformed. */
const MALFORMED = 10_000
/** Real events, half sent during each phase of the attack. */
const REAL = 2000

// ---------------------------------------------------------------- random input

/** A seeded PRNG (mulberry32), so that a failure replays with the same seed. */
class Random {
  #state: number
  constructor(seed: number) {
    this.#state = seed >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let x = this.#state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)] as T
  }

  bytes(length: number): Buffer {
    const buffer = Buffer.alloc(length)
    for (let i = 0; i < length; i++) buffer[i] = this.int(256)
    return buffer
  }
}

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8')
const join = (...parts: (string | Buffer | number[])[]): Buffer =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? utf8(part) : Buffer.from(part))))
/** A well-formed event header, with `fields` replacing or adding fields. */
const header = (fields: Record<string, unknown> = {}): string =>
  JSON.stringify({ v: 1, k: 'e', s: 'pyvent', n: 'fuzz', q: 0, t: 1, ...fields })

/** Code that would leave a mark if anything ever evaluated a payload or header. */
const EVAL_BAIT = [
  'globalThis.__pyventEvaluated = true',
  '(function(){ globalThis.__pyventEvaluated = true })()',
  "require('child_process').execSync('false')",
  '${globalThis.__pyventEvaluated = true}',
  '__proto__.polluted = true'
]

/** Topics the relay forwards (a name and a NUL), most of which no listener but Any hears. */
const TOPICS = [
  'real\0',
  'fuzz\0',
  'fuzz.deep.name\0',
  '__proto__\0',
  'constructor\0',
  'toString\0',
  'hasOwnProperty\0',
  'é€😀\0',
  '$x\0',
  '$g[junk\0',
  '$g["fuzz","g","n"]\0',
  '$p.fuzz.1\0',
  '$r.fuzz\0'
]

/** Topic frames that break the rules: no NUL, empty, NUL inside, not UTF-8, far too long for a name. */
const BAD_TOPICS: Buffer[] = [
  utf8('real'),
  utf8(''),
  utf8('\0'),
  utf8('\0real'),
  utf8('re\0al\0'),
  utf8('real\0\0'),
  join('ab', [0xff], '\0'),
  join('ab', [0xc0, 0xaf], '\0'),
  join('ab', [0xed, 0xa0, 0x80], '\0'),
  join('ab', [0xe2, 0x82], '\0'),
  utf8('x'.repeat(300) + '\0')
]

const BAD_JSON = [
  '',
  ' ',
  '{',
  '{"v":1,',
  '{v:1}',
  "{'v':1}",
  '{"v":1}}',
  '{"v":1} x',
  '\ufeff' + header(),
  header().slice(0, -1) + ',}',
  'NaN',
  'undefined',
  '[1,]',
  '[NaN]',
  '[Infinity]',
  '[-Infinity]',
  '[undefined]',
  '[0x10]',
  '[01]',
  "['a']",
  '[1] [2]',
  '["\\x41"]',
  '["unterminated]'
]

const NOT_AN_OBJECT = ['null', '1', '-0', '"e"', 'true', '[]', JSON.stringify([JSON.parse(header())])]
const NOT_AN_ARRAY = ['{}', '{"0":1,"length":1}', '"x"', 'null', '1', 'true']

/** Headers that keep the fields a message needs only where a prototype merge would find them. */
const PROTO_HEADERS = [
  '{"__proto__":{"v":1,"k":"e","s":"pyvent","n":"fuzz","q":0,"t":1}}',
  '{"v":1,"k":"e","__proto__":{"s":"pyvent","n":"fuzz","q":0,"t":1}}',
  '{"v":1,"k":"e","s":"pyvent","n":"fuzz","__proto__":{"q":0},"t":1}',
  '{"constructor":{"prototype":{"v":1,"k":"e"}},"s":"pyvent","n":"fuzz","q":0,"t":1}',
  header({ k: '__proto__' }),
  header({ k: 'constructor' }),
  header({ k: 'toString' }),
  header({ k: 'hasOwnProperty' }),
  // Well-formed, with hostile extra fields: these are events.
  header().slice(0, -1) + ',"__proto__":{"polluted":true}}',
  header().slice(0, -1) + ',"constructor":{"prototype":{"polluted":true}}}',
  header({ s: '__proto__' }),
  header({ s: 'constructor' })
]

const PROTO_BODIES = [
  '[{"__proto__":{"polluted":true}}]',
  '[{"constructor":{"prototype":{"polluted":true}}}]',
  '[{"__proto__":null,"a":1}]',
  '[{"a":{"__proto__":{"polluted":true}}}]',
  '["__proto__"]',
  '[{"__proto__":[]}]'
]

/** Headers whose JSON is fine but whose fields are not. */
const BAD_FIELDS = [
  header({ v: 2 }),
  header({ v: '1' }),
  header({ v: 0 }),
  header({ v: null }),
  JSON.stringify({ k: 'e', s: 'pyvent', n: 'fuzz', q: 0, t: 1 }),
  header({ k: 'x' }),
  header({ k: '' }),
  header({ k: 1 }),
  header({ k: ['e'] }),
  header({ s: '' }),
  header({ s: 1 }),
  header({ s: null }),
  header({ n: '' }),
  header({ n: {} }),
  header({ q: -1 }),
  header({ q: 1.5 }),
  header({ q: 2 ** 53 }),
  header({ q: '0' }),
  header({ q: null }),
  header({ t: 'Date.now()' }),
  header({ t: null }),
  header({ t: '1' }),
  header({ k: 'q' }),
  header({ k: 'q', i: '' }),
  JSON.stringify({ v: 1, k: 'r', i: 'x' }),
  JSON.stringify({ v: 1, k: 'r', i: 'x', ok: 'yes' }),
  JSON.stringify({ v: 1, k: 'r', ok: true }),
  JSON.stringify({ v: 1 })
]

type Generator = (random: Random) => Buffer[]

/**
 * One generator per kind of broken input. Every generator may also produce a message
 * that happens to be well-formed; the oracle below says which is which.
 */
const GENERATORS: Record<string, Generator> = {
  randomBytes: (r) => Array.from({ length: 1 + r.int(6) }, () => r.bytes(r.int(80))),
  randomFramesOnATopic: (r) => [utf8(r.pick(TOPICS)), r.bytes(r.int(120)), r.bytes(r.int(120))],
  wrongFrameCount: (r) => {
    const whole = [utf8(r.pick(TOPICS)), utf8(header()), utf8('[1]')]
    return Array.from({ length: r.pick([1, 2, 4, 5, 6, 9, 33]) }, (_, i) => whole[i % 3] as Buffer)
  },
  emptyFrames: (r) =>
    r.pick([
      ['', '', ''],
      ['real\0', '', ''],
      ['', header(), '[1]'],
      ['real\0', header(), ''],
      ['real\0', '', '[1]'],
      [''],
      ['', ''],
      ['', '', '', '']
    ]).map(utf8),
  badTopic: (r) => [r.pick(BAD_TOPICS), utf8(header()), utf8('[1]')],
  invalidUtf8: (r) => {
    const bad = r.pick([[0xff], [0xfe, 0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]])
    return r.pick([
      () => [utf8(r.pick(TOPICS)), join('{"v":1,"k":"e","s":"', bad, '","n":"fuzz","q":0,"t":1}'), utf8('[1]')],
      () => [utf8(r.pick(TOPICS)), utf8(header()), join('["', bad, '"]')],
      () => [utf8(r.pick(TOPICS)), join(header(), bad), utf8('[1]')]
    ])()
  },
  invalidJson: (r) =>
    r.next() < 0.5
      ? [utf8(r.pick(TOPICS)), utf8(r.pick(BAD_JSON)), utf8('[1]')]
      : [utf8(r.pick(TOPICS)), utf8(header()), utf8(r.pick(BAD_JSON))],
  notAnObject: (r) =>
    r.next() < 0.5
      ? [utf8(r.pick(TOPICS)), utf8(r.pick(NOT_AN_OBJECT)), utf8('[1]')]
      : [utf8(r.pick(TOPICS)), utf8(header()), utf8(r.pick(NOT_AN_ARRAY))],
  prototypeKeys: (r) => [
    utf8(r.pick(['real\0', 'fuzz\0', '__proto__\0', 'constructor\0', 'toString\0'])),
    utf8(r.pick(PROTO_HEADERS)),
    utf8(r.pick(PROTO_BODIES))
  ],
  badFields: (r) => [utf8(r.pick(TOPICS)), utf8(r.pick(BAD_FIELDS)), utf8(r.pick(['[1]', '[]', '[1,2]']))],
  evaluationBait: (r) =>
    r.pick([
      () => [utf8(r.pick(TOPICS)), utf8(header({ s: r.pick(EVAL_BAIT) })), utf8(JSON.stringify([r.pick(EVAL_BAIT)]))],
      () => [utf8(r.pick(TOPICS)), utf8(header({ t: r.pick(EVAL_BAIT) })), utf8('[1]')],
      () => [utf8(r.pick(TOPICS)), utf8(header()), utf8('[' + r.pick(EVAL_BAIT) + ']')]
    ])(),
  // Larger than maxMessageSize, but within what the sockets accept per frame.
  oversizedWithinFrameLimit: (r) => {
    const size = MAX_MESSAGE_SIZE + 1 + r.int(FRAME_LIMIT - MAX_MESSAGE_SIZE)
    return r.pick([
      () => [utf8(r.pick(TOPICS)), utf8(header()), r.bytes(size)],
      () => [utf8(r.pick(TOPICS)), utf8(header()), utf8('["' + 'x'.repeat(size - 4) + '"]')],
      () => [utf8(r.pick(TOPICS)), utf8(header({ pad: 'x'.repeat(size - 80) })), utf8('[1]')],
      () => [utf8('x'.repeat(size - 1) + '\0'), utf8(header()), utf8('[1]')]
    ])()
  },
  deepNesting: (r) => {
    const depth = 500 + r.int(1500)
    return [utf8(r.pick(TOPICS)), utf8(header()), utf8('['.repeat(depth + 1) + ']'.repeat(depth + 1))]
  },
  forgedControl: (r) =>
    r.pick([
      ['$p.fuzz.1\0', '{"v":1,"k":"p"}', '[]'],
      ['$r.fuzz\0', '{"v":1,"k":"r","i":"x","ok":true}', '[1]'],
      ['$r.fuzz\0', '{"v":1,"k":"r","i":"x","ok":false}', '[{"name":"Error","message":"forged"}]'],
      ['$r.fuzz\0', '{"v":1,"k":"r","i":"x","ok":true}', '[]'],
      ['fuzz\0', '{"v":1,"k":"p"}', '[]'],
      ['fuzz\0', '{"v":1,"k":"h"}', '[]']
    ]).map(utf8)
}

/**
 * What should become of a message thrown at the relay's pull port: the relay forwards
 * exactly three frames whose topic is a name and a NUL (PROTOCOL.md section 9, plus
 * the non-empty name of section 13), except on the relay's own topics (`$h`
 * heartbeats, `$g` group shares), which a client can only forge; listeners decode
 * what is forwarded, and count what does not decode.
 */
function oracle(frames: Buffer[]): { forwarded: boolean; decoded: ReturnType<typeof decode> | undefined } {
  const topic = frames[0]
  const prefix = topic?.subarray(0, 2).toString('latin1')
  // Heartbeats, group shares and responder shares are the relay's own: a client's is refused.
  const relayOnly = prefix === '$h' || prefix === '$g' || prefix === '$s'
  const shaped = frames.length === 3 && topic !== undefined && topic.length >= 2 && topic[topic.length - 1] === 0
  if (shaped && prefix === '$q') {
    // A request: with no responder anywhere, the relay answers it itself (a well-formed
    // reply, which no listener counts as malformed) or, naming no requester, refuses it.
    const answered = requestOrigin(topic, frames[1] as Buffer) !== undefined
    return { forwarded: answered, decoded: answered ? { kind: 'r', topic: '', request: '', ok: false, value: null } : undefined }
  }
  // A group report on the data path: the relay consumes it (a junk one counts as malformed).
  if (shaped && topic.length === 3 && prefix === '$c') {
    return decodeGroupState(frames[1] as Buffer) === undefined ? { forwarded: false, decoded: undefined } : { forwarded: true, decoded: { kind: 'h', topic: '' } }
  }
  const forwarded = shaped && !relayOnly
  if (!forwarded) return { forwarded, decoded: undefined }
  // A probe comes back with the relay's own header (which announces its limit).
  const relayed = prefix === '$p' ? [frames[0] as Buffer, utf8(JSON.stringify({ v: 1, k: 'p', m: MAX_MESSAGE_SIZE })), frames[2] as Buffer] : frames
  try {
    return { forwarded, decoded: decode(relayed) }
  } catch {
    return { forwarded, decoded: undefined }
  }
}

// ---------------------------------------------------------------- raw TCP

/** A ZMTP 3.0 greeting (RFC 23) offering `mechanism`. */
function greeting(mechanism: string): Buffer {
  const bytes = Buffer.alloc(64)
  bytes[0] = 0xff
  bytes[9] = 0x7f
  bytes[10] = 3
  bytes.write(mechanism, 12, 'ascii')
  return bytes
}

/** A NULL-mechanism READY command announcing `socketType`. */
function ready(socketType: string): Buffer {
  const name = 'Socket-Type'
  const length = Buffer.alloc(4)
  length.writeUInt32BE(socketType.length)
  const body = join([5], 'READY', [name.length], name, length, socketType)
  return join([0x04, body.length], body)
}

/** The header of a single frame claiming `size` bytes (its body never follows). */
function hugeFrame(size: bigint): Buffer {
  const bytes = Buffer.alloc(9)
  bytes[0] = 0x02
  bytes.writeBigUInt64BE(size, 1)
  return bytes
}

/**
 * Writes `data` to `port` from a plain TCP socket and resolves once the connection
 * is closed. With `hangUp`, this side ends it after writing; without, the relay must.
 */
async function rawTcp(t: Test, port: number, data: Buffer, hangUp: boolean, what: string): Promise<void> {
  const socket: TcpSocket = tcpConnect({ host: '127.0.0.1', port })
  t.teardown(() => void socket.destroy())
  socket.on('error', () => undefined)
  socket.resume()
  const closed = once(socket, 'close')
  await once(socket, 'connect')
  socket.write(data)
  if (hangUp) socket.end()
  await deadline(closed, 5000, what)
}

// ---------------------------------------------------------------- debug lines

/**
 * Captures the `debug` lines of pyvent's client (this thread) and relay (its
 * worker thread, whose stderr is piped through this process's), and keeps them
 * off the test output.
 */
function captureDebug(t: Test): { client: string[]; relay: () => string } {
  const client: string[] = []
  let relay = ''
  const previous = createDebug.disable()
  // enable() also sets process.env.DEBUG, which the relay worker inherits when it starts.
  createDebug.enable('pyvent:client,pyvent:relay')
  const log = createDebug.log
  createDebug.log = (...args: unknown[]) => void client.push(format(...args))
  const write = process.stderr.write
  process.stderr.write = function (chunk: string | Uint8Array, ...rest: unknown[]): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
    if (text.includes('pyvent:')) {
      relay += text
      return true
    }
    return (write as (...args: unknown[]) => boolean).call(process.stderr, chunk, ...rest)
  } as typeof process.stderr.write
  t.teardown(() => {
    process.stderr.write = write
    createDebug.log = log
    createDebug.disable()
    if (previous) createDebug.enable(previous)
  })
  return { client, relay: () => relay }
}

const count = (text: string, needle: string): number => text.split(needle).length - 1

/** Own keys of the built-in prototypes, to prove nothing was merged into them. */
function prototypes(): string[] {
  return [Object.prototype, Array.prototype, Function.prototype, String.prototype, Number.prototype].map((proto) =>
    Reflect.ownKeys(proto).map(String).sort().join(',')
  )
}

// ---------------------------------------------------------------- the tests

t.test(`${MALFORMED}+ malformed messages at both relay ports while real traffic flows (seed ${SEED})`, async (t) => {
  const port = ports.next()
  const logs = captureDebug(t)
  const prototypesBefore = prototypes()
  const options = { port, maxMessageSize: MAX_MESSAGE_SIZE, readyTimeout: 10_000 }
  const host = new Node(options)
  const anyListener = new Node({ ...options, server: false, id: 'any' })
  const signalListener = new Node({ ...options, server: false, id: 'signal' })
  const sender = new Node({ ...options, server: false, id: 'sender' })
  const nodes = [host, anyListener, signalListener, sender]
  const closers: (() => void)[] = []
  t.teardown(async () => {
    for (const close of closers) close()
    for (const node of [sender, signalListener, anyListener, host]) await node.stop()
  })
  t.ok(await host.startServer(), 'the test hosts the relay')

  // Real events, and what the listeners saw of forged ones.
  const real = { any: [] as number[], signal: [] as number[] }
  const forged = { any: 0, signal: 0 }
  const hostile: unknown[] = []
  // End-of-phase markers (events from nodes "fuzz-marker-<n>", sent one after another), as each listener counts them.
  const markers = { any: 0, signal: 0 }
  let markerArrived = (): void => undefined
  const markersAtBoth = (n: number): Promise<void> =>
    new Promise((resolve) => {
      markerArrived = () => void (markers.any >= n && markers.signal >= n && resolve())
      markerArrived()
    })
  const anyDone = new Promise<void>((resolve) => {
    anyListener.connect(
      Any,
      (payload: unknown, event: PyventEvent) => {
        if (event.node === sender.nodeId) {
          real.any.push((payload as { i: number }).i)
          if (real.any.length === REAL) resolve()
        } else {
          forged.any++
          if (typeof payload === 'object' && payload !== null && !Array.isArray(payload)) hostile.push(payload)
          if (event.node.startsWith('fuzz-marker')) {
            markers.any++
            markerArrived()
          }
        }
      },
      { sender: Any }
    )
  })
  const signalDone = new Promise<void>((resolve) => {
    signalListener.connect('real', (payload: unknown, event: PyventEvent) => {
      if (event.node === sender.nodeId) {
        real.signal.push((payload as { i: number }).i)
        if (real.signal.length === REAL) resolve()
      } else {
        forged.signal++
        if (event.node.startsWith('fuzz-marker')) {
          markers.signal++
          markerArrived()
        }
      }
    })
  })
  await Promise.all([anyListener.ready(), signalListener.ready(), sender.ready()])

  let sent = 0
  const sendReal = async (upTo: number): Promise<void> => {
    while (sent < upTo) await sender.send('real', { i: sent++ })
    // Let the batch go before the attack goes on, so the two really interleave.
    await new Promise((resolve) => setImmediate(resolve))
  }

  // Phase 1: the pull port. Every message and its fate are known, so the counts are exact.
  const attacker = new Push({ linger: 0, sendHighWaterMark: 1000 })
  closers.push(() => attacker.close())
  attacker.connect(`tcp://127.0.0.1:${port + 1}`)
  const random = new Random(SEED)
  const kinds = Object.keys(GENERATORS)
  const seen: Record<string, number> = {}
  const expected = { relayMalformed: 0, anyMalformed: 0, signalMalformed: 0, forgedAny: 0, forgedSignal: 0 }
  const signalTopics = ['real\0', '$h\0', `$r.${signalListener.nodeId}\0`].map(utf8)
  const account = (frames: Buffer[]): void => {
    const { forwarded, decoded } = oracle(frames)
    if (!forwarded) expected.relayMalformed++
    else if (decoded === undefined) {
      expected.anyMalformed++
      if (signalTopics.some((topic) => (frames[0] as Buffer).subarray(0, topic.length).equals(topic))) expected.signalMalformed++
    } else if ((decoded.kind === 'e' || decoded.kind === 'q') && decoded.group === undefined) {
      expected.forgedAny += decoded.payloads.length
      if (decoded.signal === 'real' && senderMatches('pyvent', decoded.sender)) expected.forgedSignal += decoded.payloads.length
    }
  }
  // A few forged heartbeats, good and bad: every node hears these.
  const heartbeats = [
    ['$h\0', '{"v":1,"k":"h"}', '[]'],
    ['$h\0', '{"v":1,"k":"h","__proto__":{"polluted":true}}', '[]'],
    ['$h\0', '{"v":1,"k":"h"', '[]'],
    ['$h\0junk\0', '{"v":1,"k":"h"}', '[]'],
    ['$h\0', header(), '[1]']
  ].map((frames) => frames.map(utf8))
  for (const frames of heartbeats) {
    account(frames)
    await attacker.send(frames)
  }
  let thrown = 0
  while (expected.relayMalformed + expected.anyMalformed < MALFORMED) {
    const kind = random.pick(kinds)
    const frames = (GENERATORS[kind] as Generator)(random)
    seen[kind] = (seen[kind] ?? 0) + 1
    account(frames)
    await attacker.send(frames)
    if (++thrown % 8 === 0) await sendReal(Math.min(REAL / 2, sent + 1))
  }
  await sendReal(REAL / 2)
  // A well-formed event last: once the relay has read it, it has read everything before it.
  const marker = (n: number): Buffer[] => [utf8('real\0'), utf8(header({ n: `fuzz-marker-${n}` })), utf8('["end of phase 1"]')]
  account(marker(1))
  await attacker.send(marker(1))
  await deadline(markersAtBoth(1), 10_000, 'the end-of-phase marker at both listeners')
  // But a listener may get it before earlier messages: a lossless relay parks what a full
  // listener queue refuses, by sending node (here, a forged "n" or the topic), and publishes
  // other nodes' messages, the marker's among them, meanwhile. Once nothing is parked, every
  // message was published, and a second marker follows them all on each listener's connection.
  await until(async () => (await host.stats()).relay?.parked === 0, 10_000, 'the relay to publish every parked message')
  account(marker(2))
  await attacker.send(marker(2))
  await deadline(markersAtBoth(2), 10_000, 'the second end-of-phase marker at both listeners')
  t.comment(`phase 1: ${thrown} messages thrown (${JSON.stringify(seen)})`)
  t.ok(expected.relayMalformed + expected.anyMalformed >= MALFORMED, `at least ${MALFORMED} of them malformed`)
  const relayStats = (await host.stats()).relay
  const anyStats = await anyListener.stats()
  const signalStats = await signalListener.stats()
  t.equal(relayStats?.malformed, expected.relayMalformed, 'the relay counted every message of the wrong layout')
  t.equal(anyStats.malformed, expected.anyMalformed, 'the Any listener counted every forwarded message that does not decode')
  t.equal(signalStats.malformed, expected.signalMalformed, 'the listener of "real" counted the malformed messages on its topics')
  t.equal(forged.any, expected.forgedAny, 'the Any listener got every well-formed forged event, once')
  t.equal(forged.signal, expected.forgedSignal, 'the listener of "real" got every well-formed forged "real" event, once')
  t.ok(relayStats!.malformed > 0 && anyStats.malformed > 0 && signalStats.malformed > 0, 'all three counted some')

  // Phase 2: everything that cannot be counted exactly, with the other half of the real traffic.
  // Frames over the limit: ZeroMQ refuses them before buffering and drops the connection.
  const oversized: [string, Buffer[]][] = [
    ['an oversized body', [utf8('real\0'), utf8(header()), Buffer.alloc(FRAME_LIMIT + 1, 0x41)]],
    ['an oversized topic', [Buffer.concat([Buffer.alloc(FRAME_LIMIT, 0x41), Buffer.from([0])]), utf8(header()), utf8('[1]')]]
  ]
  for (const [what, frames] of oversized) {
    const push = new Push({ linger: 0 })
    closers.push(() => push.close())
    const dropped = new Promise<void>((resolve) => push.events.on('disconnect', () => resolve()))
    push.connect(`tcp://127.0.0.1:${port + 1}`)
    await push.send(frames)
    await deadline(dropped, 5000, `the relay to drop the connection that sent ${what}`)
    push.close()
    t.pass(`the relay's pull port dropped the connection that sent ${what}`)
    await sendReal(sent + 100)
  }
  // The publisher port: junk subscriptions (including work groups of "real"), junk that
  // is not a subscription, and finally a subscription far longer than any topic.
  // No send high-water mark: an XSUB never makes send() wait, and past its high-water
  // mark (1000 by default) libzmq silently drops what is sent, subscriptions included.
  // These 2000-odd frames are sent faster than the connection comes up and the relay
  // reads them, so at the default the oversized frame sent last was sometimes never
  // sent at all. Unlimited, every frame reaches the relay, in order.
  const spy = new XSubscriber({ linger: 0, sendHighWaterMark: 0 })
  closers.push(() => spy.close())
  let spyDisconnects = 0
  let spyDropped: () => void = () => undefined
  spy.events.on('disconnect', () => {
    spyDisconnects++
    spyDropped()
  })
  spy.connect(`tcp://127.0.0.1:${port}`)
  void (async () => {
    // A well-behaved reader, so that it tests the junk and not a slow subscriber.
    for await (const _ of spy) void _
  })().catch(() => undefined)
  await spy.send(Buffer.from([1]))
  for (let i = 0; i < 2000; i++) {
    const junk = random.pick<() => Buffer | Buffer[]>([
      () => join([1], random.bytes(random.int(100))),
      () => join([0], random.bytes(random.int(100))),
      () => join([2 + random.int(254)], random.bytes(random.int(100))),
      () => Buffer.alloc(0),
      () => [join([1], 'real\0'), random.bytes(10), Buffer.alloc(0)],
      () => join([1], `$g["real","g${random.int(50)}","${random.int(5)}"]\0`),
      () => join([0], `$g["real","g${random.int(50)}","${random.int(5)}"]\0`),
      () => join([1], '$g["real"', random.bytes(20), '\0'),
      () => join([1], `$g["real","__proto__","constructor"]\0`)
    ])()
    await spy.send(junk)
    if (i % 100 === 0) await sendReal(sent + 10)
  }
  // No subscription is longer than the longest topic. Only a drop after this frame counts
  // (none may have come before it: junk alone must not cost the subscriber its connection).
  t.equal(spyDisconnects, 0, 'the relay kept the subscriber that sent junk')
  const oversizedDropped = new Promise<void>((resolve) => (spyDropped = resolve))
  await spy.send(join([1], Buffer.alloc(MAX_TOPIC_BYTES * 8, 0x41)))
  await deadline(oversizedDropped, 5000, 'the relay to drop the subscriber that sent an oversized frame')
  t.pass(`the relay's publisher port dropped the connection that sent a ${MAX_TOPIC_BYTES * 8}-byte subscription`)
  spy.close()
  // Plain TCP: garbage, an HTTP request, a bad ZMTP mechanism, and frames announcing 2^40 bytes.
  for (const target of [port, port + 1]) {
    await rawTcp(t, target, random.bytes(4096), true, `garbage to port ${target} to end`)
    await rawTcp(t, target, utf8('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'), true, `HTTP to port ${target} to end`)
    await rawTcp(t, target, greeting('EVIL'), false, `the relay to hang up on an unknown mechanism at port ${target}`)
    const type = target === port ? 'SUB' : 'PUSH'
    await rawTcp(t, target, join(greeting('NULL'), ready(type), hugeFrame(2n ** 40n)), false, `the relay to hang up on a 1 TiB frame at port ${target}`)
    await sendReal(sent + 100)
  }
  t.pass('the relay hung up on every plain TCP connection that did not speak ZMTP properly')
  await sendReal(REAL)

  // Everything real arrived, once, in order, at both listeners.
  await deadline(Promise.all([anyDone, signalDone]), 10_000, `all ${REAL} real events at both listeners`)
  const inOrder = Array.from({ length: REAL }, (_, i) => i)
  t.same(real.any, inOrder, 'the Any listener got every real event once, in order')
  t.same(real.signal, inOrder, 'the listener of "real" got every real event once, in order')
  // And the listeners still listen.
  const after = [anyListener.waitFor('after', { timeout: 5000 }), signalListener.waitFor('after', { timeout: 5000 })]
  await sender.send('after', 'still here')
  t.same((await Promise.all(after)).map((event) => event.payload), ['still here', 'still here'], 'both listeners still hear new events')
  const fresh = new Node({ ...options, server: false, id: 'fresh' })
  nodes.push(fresh)
  t.teardown(() => fresh.stop())
  await deadline(fresh.ready(), 5000, 'a new node to find the relay ready')
  t.ok(host.isServer(), 'the relay never moved')
  const final = (await host.stats()).relay!
  t.ok(final.malformed >= expected.relayMalformed, `the relay counted ${final.malformed} malformed messages in all`)

  // Nothing was evaluated, nothing was merged into a prototype.
  t.same(prototypes(), prototypesBefore, 'no built-in prototype gained or lost a key')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'plain objects have no "polluted"')
  t.equal((globalThis as Record<string, unknown>).__pyventEvaluated, undefined, 'no payload or header was evaluated')
  const withProto = hostile.filter((payload) => Object.hasOwn(payload as object, '__proto__'))
  t.ok(withProto.length > 0, `${withProto.length} forged payloads with a "__proto__" key were delivered, as an ordinary own key`)
  t.ok(
    hostile.every((payload) => Object.getPrototypeOf(payload) === Object.prototype && (payload as { polluted?: unknown }).polluted === undefined),
    `all ${hostile.length} forged object payloads are plain objects with their usual prototype`
  )

  // Every malformed message was logged under debug, once.
  let clientTotal = 0
  for (const node of nodes) clientTotal += (await node.stats()).malformed
  t.equal(count(logs.client.join('\n'), 'dropped a malformed message'), clientTotal, 'one debug line per malformed message at the listeners')
  await deadline(
    new Promise<void>((resolve) => {
      const check = (): void => (count(logs.relay(), 'dropped a message of') >= final.malformed ? resolve() : void setImmediate(check))
      check()
    }),
    5000,
    `the relay's debug lines (${count(logs.relay(), 'dropped a message of')} of ${final.malformed})`
  ).catch((error: Error) => t.fail(error.message))
  t.equal(count(logs.relay(), 'dropped a message of'), final.malformed, 'one debug line per malformed message at the relay')
})

t.test('a flood of forged heartbeats neither stalls the relay nor holds up real events', async (t) => {
  const port = ports.next()
  const options = { port, maxMessageSize: MAX_MESSAGE_SIZE, linger: 300 }
  const host = new Node(options)
  const listener = new Node({ ...options, server: false, id: 'listener' })
  // A node that only sends never reads its subscriber socket, yet it is subscribed to the heartbeat topic.
  const sender = new Node({ ...options, server: false, id: 'sender' })
  const attacker = new Push({ linger: 0, sendHighWaterMark: 1000 })
  t.teardown(async () => {
    attacker.close()
    for (const node of [sender, listener, host]) await node.stop()
  })
  t.ok(await host.startServer(), 'the test hosts the relay')
  let received = 0
  let done: () => void
  const all = new Promise<void>((resolve) => (done = resolve))
  listener.connect('real', () => {
    if (++received === 100) done()
  })
  await Promise.all([listener.ready(), sender.ready()])
  attacker.connect(`tcp://127.0.0.1:${port + 1}`)
  // 6,000 well-formed heartbeats of 4 KiB each (24 MB): more than the socket buffers of a node that does not read.
  const beat = [utf8('$h\0'), utf8('{"v":1,"k":"h"}'), utf8('[' + '0,'.repeat(2000) + '0]')]
  const flood = (async () => {
    for (let i = 0; i < 6000; i++) await attacker.send(beat)
  })()
  flood.catch(() => undefined)
  try {
    await deadline(flood, 5000, 'the relay to take 6,000 forged heartbeats')
    t.pass('the relay took the whole flood')
  } catch (error) {
    const relay = (await host.stats()).relay
    t.fail(`${(error as Error).message}: relay ${JSON.stringify(relay)}`)
  }
  for (let i = 0; i < 100; i++) await sender.send('real', { i })
  await deadline(all, 3000, `100 real events after the flood (got ${received})`).catch((error: Error) => t.fail(error.message))
  t.equal(received, 100, 'every real event arrived')
})

t.test('junk on the publisher port cannot take a work-group member out of its group', async (t) => {
  const port = ports.next()
  const host = new Node({ port })
  const member = new Node({ port, server: false, id: 'member' })
  const spy = new XSubscriber({ linger: 0 })
  t.teardown(async () => {
    spy.close()
    await member.stop()
    await host.stop()
  })
  t.ok(await host.startServer(), 'the test hosts the relay')
  const jobs: number[] = []
  let eleven: () => void = () => undefined
  member.connect(
    'job',
    ({ i }: { i: number }) => {
      jobs.push(i)
      if (jobs.length === 11) eleven()
    },
    { group: 'workers' }
  )
  await Promise.all([member.ready(), host.ready()])
  const before = member.waitFor('marker')
  await host.send('job', { i: 0 })
  await host.send('marker', 1)
  await deadline(before, 5000, 'the first marker')
  t.same(jobs, [0], 'the member gets the group\'s events')

  // Anyone who can reach the publisher port can learn a member's topic (subscribe to
  // everything and watch), then send it back in frames that are not subscriptions:
  // the first byte of a subscription message is 1 (subscribe) or 0 (unsubscribe).
  spy.connect(`tcp://127.0.0.1:${port}`)
  const memberTopic = `$g${JSON.stringify(['job', 'workers', member.nodeId])}\0`
  for (const first of [2, 0x7f, 0xff]) await spy.send(join([first], memberTopic))
  // Then a subscription to everything: once the spy hears anything, the relay has read the junk
  // (one connection, in order), and reads it before its next publish at the latest.
  await spy.send(Buffer.from([1]))
  await deadline(spy.receive(), 5000, 'the spy to hear the relay')
  void (async () => {
    for await (const _ of spy) void _
  })().catch(() => undefined)
  // Group events are dealt one by one as the member finishes them, so a plain marker
  // may overtake them: wait for the jobs themselves.
  const all = new Promise<void>((resolve) => (eleven = resolve))
  for (let i = 1; i <= 10; i++) await host.send('job', { i })
  await deadline(all, 5000, 'the ten later jobs')
  t.same(jobs, Array.from({ length: 11 }, (_, i) => i), 'the member still gets every event of its group')
})
