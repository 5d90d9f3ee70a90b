// The codec is pure: bytes in, message out, or a ProtocolError that names the fault.
import t from 'tap'
import { decode, encodeControl, encodeEvents, encodeFlow, encodeReply, MAX_ENVELOPE_BYTES } from '../dist/codec.js'
import { checkName, encodePayload } from '../dist/payload.js'
import { groupTopic, parseGroupTopic, topicFrame } from '../dist/topics.js'
import { InvalidPayloadError, MessageTooLargeError, ProtocolError } from '../dist/index.js'

/** What a socket delivers for frames the codec wrote: strings arrive as UTF-8 Buffers. */
const wire = (frames: (Buffer | string)[]): Buffer[] => frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f))

const NODE = '6f1c3c2e-6a0b-4d47-9a55-0c1d2a3b4c5d'
const header = (fields: Record<string, unknown>) => Buffer.from(JSON.stringify({ v: 1, ...fields }))
const event = { k: 'e', s: 'pyvent', n: NODE, q: 7, t: 1700000000000 }

t.test('an event batch round-trips', async (t) => {
  const frames = encodeEvents(topicFrame('order-food'), { kind: 'e', sender: 'shop.front', seq: 3, time: 42 }, NODE, [
    encodePayload({ food: 'sushi' }, 1024),
    encodePayload([1, 'two', null], 1024)
  ])
  t.equal(frames.length, 3)
  t.same(frames[0], Buffer.from('order-food\0'))
  t.same(decode(wire(frames)), {
    kind: 'e',
    topic: 'order-food',
    signal: 'order-food',
    sender: 'shop.front',
    node: NODE,
    seq: 3,
    time: 42,
    payloads: [{ food: 'sushi' }, [1, 'two', null]]
  })
})

t.test('requests, replies, probes and heartbeats round-trip', async (t) => {
  const request = decode(wire(encodeEvents(topicFrame('add'), { kind: 'q', sender: 'pyvent', seq: 0, time: 1, request: 'r1' }, NODE, ['[1,2]'])))
  t.match(request, { kind: 'q', signal: 'add', request: 'r1', payloads: [[1, 2]] })
  t.same(decode(wire(encodeReply('$r.abc', 'r1', true, '3'))), { kind: 'r', topic: '$r.abc', request: 'r1', ok: true, value: 3 })
  t.same(decode(wire(encodeControl('p', '$p.abc.1'))), { kind: 'p', topic: '$p.abc.1' })
  t.same(decode(wire(encodeControl('h', '$h'))), { kind: 'h', topic: '$h' })
})

t.test("the relay's flow control (hold, go on) round-trips, on reply topics only", async (t) => {
  const hold = encodeFlow(`$r.${NODE}`, 400)
  t.equal(hold[1]!.toString(), '{"v":1,"k":"x","w":400}', 'the header on the wire')
  t.same(decode(wire(hold)), { kind: 'x', topic: `$r.${NODE}`, hold: 400 })
  t.same(decode(wire(encodeFlow(`$r.${NODE}`, 0))), { kind: 'x', topic: `$r.${NODE}`, hold: 0 }, 'go on')
  for (const bad of ['-1', '1.5', '"400"', 'null', '60001', '1e999']) {
    const frames = [Buffer.from(`$r.${NODE}\0`), Buffer.from(`{"v":1,"k":"x","w":${bad}}`), Buffer.from('[]')]
    t.throws(() => decode(frames), { name: 'ProtocolError', message: /header field "w" must be an integer from 0 to 60000/ }, `w ${bad}`)
  }
  t.throws(() => decode(wire(encodeFlow('order-food', 400))), { name: 'ProtocolError', message: /flow control may only use a reply topic/ }, 'not on a signal')
})

t.test('probes and heartbeats may announce the relay\'s maxMessageSize in "m"', async (t) => {
  const heartbeat = encodeControl('h', '$h', { limit: 1048576 })
  t.equal(heartbeat[1]!.toString(), '{"v":1,"k":"h","m":1048576}', 'the field on the wire')
  t.same(decode(wire(heartbeat)), { kind: 'h', topic: '$h', limit: 1048576 })
  t.same(decode(wire(encodeControl('p', '$p.abc.2', { limit: 256 }))), { kind: 'p', topic: '$p.abc.2', limit: 256 })
  const old = decode(wire(encodeControl('h', '$h', {})))
  t.notOk('limit' in old, 'a message without "m" has no limit')
  t.same(decode([Buffer.from('$h\0'), Buffer.from('{"k":"h","v":1,"m":9007199254740991}'), Buffer.from('[]')]), {
    kind: 'h',
    topic: '$h',
    limit: Number.MAX_SAFE_INTEGER
  })
  for (const bad of ['0', '-1', '1.5', '"1024"', 'null', 'true', '[1024]', '9007199254740992', '1e999']) {
    for (const kind of ['h', 'p']) {
      const frames = [Buffer.from('$h\0'), Buffer.from(`{"v":1,"k":"${kind}","m":${bad}}`), Buffer.from('[]')]
      t.throws(() => decode(frames), { name: 'ProtocolError', message: /header field "m" must be a positive integer/ }, `${kind} with m ${bad}`)
    }
  }
  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    t.throws(() => encodeControl('h', '$h', { limit: bad }), RangeError, `encodeControl refuses the limit ${bad}`)
  }
  const ignored = decode([Buffer.from('sig\0'), header({ ...event, m: 'whatever' }), Buffer.from('[1]')])
  t.notOk('limit' in ignored, '"m" means nothing in an event header and is ignored there')
})

t.test('an event message with no payload is a stream mark, and drop mode is announced in "d"', async (t) => {
  const mark = decode(wire(encodeEvents(topicFrame('sig'), { kind: 'e', sender: 'pyvent', seq: 42, time: 1 }, NODE, [])))
  t.match(mark, { kind: 'e', signal: 'sig', node: NODE, seq: 42, payloads: [] }, 'decodes with no payloads, numbered where the stream stands')
  const heartbeat = encodeControl('h', '$h', { limit: 1024, drop: true })
  t.equal(heartbeat[1]!.toString(), '{"v":1,"k":"h","m":1024,"d":1}', 'the field on the wire')
  t.same(decode(wire(heartbeat)), { kind: 'h', topic: '$h', limit: 1024, drop: true })
  t.same(decode(wire(encodeControl('p', '$p.abc.1', { drop: true }))), { kind: 'p', topic: '$p.abc.1', drop: true })
  t.notOk('drop' in decode(wire(encodeControl('h', '$h', { limit: 1024, drop: false }))), 'lossless: no "d"')
})

t.test('group topics carry the signal and group', async (t) => {
  const topic = groupTopic('resize', 'workers', NODE)
  t.same(parseGroupTopic(topic), ['resize', 'workers', NODE])
  const message = decode(wire(encodeEvents(topicFrame(topic), { kind: 'e', sender: 'pyvent', seq: 4, time: 1 }, NODE, ['1'])))
  t.match(message, { kind: 'e', topic, signal: 'resize', group: 'workers', seq: 4 })
  for (const bad of ['$gx', '$g[', '$g[1,2,3]', '$g["a","b"]', '$g["a","","c"]', '$g{}']) {
    t.equal(parseGroupTopic(bad), undefined, bad)
    t.throws(() => decode([Buffer.from(bad + '\0'), header(event), Buffer.from('[1]')]), { code: 'ERR_PYVENT_PROTOCOL' })
  }
})

t.test('the topic ends with NUL so a prefix subscription is exact', async (t) => {
  const order = topicFrame('order')
  const orderFood = topicFrame('order-food')
  t.notOk(orderFood.subarray(0, order.length).equals(order), '"order\\0" is not a prefix of "order-food\\0"')
  t.equal(topicFrame('order'), order, 'topic frames are cached')
})

t.test('payloads JSON cannot carry faithfully are refused', async (t) => {
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  for (const [what, payload] of [
    ['a function', { f: () => 1 }],
    ['a symbol', { s: Symbol('x') }],
    ['a BigInt', { n: 10n }],
    ['a cycle', cycle],
    ['NaN', { n: NaN }],
    ['Infinity', [Infinity]]
  ] as const) {
    t.throws(() => encodePayload(payload, 1024), InvalidPayloadError, what)
  }
  t.equal(encodePayload({ a: undefined, b: 1 }, 1024), '{"b":1}', 'undefined properties are left out, as JSON does')
  t.equal(encodePayload({ d: new Date(0) }, 1024), '{"d":"1970-01-01T00:00:00.000Z"}', 'toJSON is honoured')
  let deep: unknown = 'bottom'
  for (let i = 0; i < 40; i++) deep = [deep]
  t.equal(encodePayload(deep, 1024), '['.repeat(40) + '"bottom"' + ']'.repeat(40), 'deep nesting takes the precise path')
  t.throws(() => encodePayload(undefined, 1024), InvalidPayloadError, 'undefined alone is not JSON')
  t.throws(() => encodePayload([1, undefined], 1024), { code: 'ERR_PYVENT_INVALID_PAYLOAD', message: /undefined in an array at payload\[1\]/ })
  t.throws(() => encodePayload({ m: new Map([[1, 2]]) }, 1024), { message: /Cannot send a Map at payload\.m/ })
  t.throws(() => encodePayload({ s: new Set([1]) }, 1024), { message: /Cannot send a Set at payload\.s/ })
  // The rest of the payload rule is in payload.test.ts.
})

t.test('a payload over the size limit is refused with its size', async (t) => {
  const error = t.throws(() => encodePayload({ text: 'x'.repeat(2000) }, 1000)) as MessageTooLargeError
  t.equal(error.code, 'ERR_PYVENT_MESSAGE_TOO_LARGE')
  t.equal(error.limit, 1000)
  t.ok(error.size > 2000)
  t.equal(encodePayload('é'.repeat(100), 1000).length, 102, 'multi-byte text under the limit passes')
  t.throws(() => encodePayload('é'.repeat(400), 600), MessageTooLargeError, 'the limit counts UTF-8 bytes')
})

t.test('names are checked', async (t) => {
  t.equal(checkName('order-food', 'signal'), 'order-food')
  t.throws(() => checkName('', 'signal'), /must not be empty/)
  t.throws(() => checkName(42, 'signal'), /must be a string, got number/)
  t.throws(() => checkName(null, 'signal'), /got null/)
  t.throws(() => checkName('a\0b', 'signal'), /NUL/)
  t.throws(() => checkName('$h', 'signal'), /reserved/)
  t.equal(checkName('$h', 'topic', true), '$h', 'internal names may use the reserved prefix')
  t.throws(() => checkName('x'.repeat(256), 'signal'), /255 bytes/)
})

t.test('malformed messages are refused with a reason', async (t) => {
  const good = [Buffer.from('sig\0'), header(event), Buffer.from('[{}]')]
  const cases: [string, Buffer[], RegExp][] = [
    ['no frames', [], /expected 3 frames, got 0/],
    ['two frames', good.slice(0, 2), /got 2/],
    ['four frames', [...good, Buffer.from('x')], /got 4/],
    ['empty topic', [Buffer.alloc(0), good[1]!, good[2]!], /topic frame/],
    ['topic of only NUL', [Buffer.from('\0'), good[1]!, good[2]!], /topic frame/],
    ['topic without NUL', [Buffer.from('sig'), good[1]!, good[2]!], /topic frame/],
    ['NUL inside topic', [Buffer.from('s\0g\0'), good[1]!, good[2]!], /NUL byte inside/],
    ['invalid UTF-8 topic', [Buffer.from([0xff, 0xfe, 0]), good[1]!, good[2]!], /UTF-8/],
    ['invalid UTF-8 header', [good[0]!, Buffer.from([0x7b, 0xff, 0x7d]), good[2]!], /header frame is not valid UTF-8/],
    ['header not JSON', [good[0]!, Buffer.from('{v:1'), good[2]!], /header frame is not valid JSON/],
    ['header an array', [good[0]!, Buffer.from('[1]'), good[2]!], /JSON object/],
    ['header null', [good[0]!, Buffer.from('null'), good[2]!], /JSON object/],
    ['unknown version', [good[0]!, header({ ...event, v: 2 }), good[2]!], /unsupported protocol version 2/],
    ['no version', [good[0]!, Buffer.from(JSON.stringify(event)), good[2]!], /unsupported protocol version undefined/],
    ['unknown kind', [good[0]!, header({ ...event, k: 'z' }), good[2]!], /unknown message kind "z"/],
    ['body not JSON', [good[0]!, good[1]!, Buffer.from('[{')], /body frame is not valid JSON/],
    ['body invalid UTF-8', [good[0]!, good[1]!, Buffer.from([0x5b, 0xc3, 0x28, 0x5d])], /body frame is not valid UTF-8/],
    ['body an object', [good[0]!, good[1]!, Buffer.from('{}')], /JSON array/],
    ['empty request', [Buffer.from('$q["sig"]\0'), header({ ...event, k: 'q', i: 'r1' }), Buffer.from('[]')], /exactly one payload/],
    ['event on reserved topic', [Buffer.from('$h\0'), good[1]!, good[2]!], /reserved topic/],
    ['missing sender', [good[0]!, header({ ...event, s: undefined }), good[2]!], /"s" must be/],
    ['empty sender', [good[0]!, header({ ...event, s: '' }), good[2]!], /"s" must be/],
    ['negative seq', [good[0]!, header({ ...event, q: -1 }), good[2]!], /"q" must be/],
    ['fractional seq', [good[0]!, header({ ...event, q: 1.5 }), good[2]!], /"q" must be/],
    ['time a string', [good[0]!, header({ ...event, t: 'now' }), good[2]!], /"t" must be/],
    ['request without id', [good[0]!, header({ ...event, k: 'q' }), good[2]!], /"i" must be/],
    ['request of two payloads', [good[0]!, header({ ...event, k: 'q', i: 'x' }), Buffer.from('[1,2]')], /exactly one payload/],
    ['reply without ok', [Buffer.from('$r.x\0'), header({ k: 'r', i: 'x' }), Buffer.from('[1]')], /"ok" must be/],
    ['reply of two values', [Buffer.from('$r.x\0'), header({ k: 'r', i: 'x', ok: true }), Buffer.from('[1,2]')], /exactly one value/]
  ]
  for (const [what, frames, reason] of cases) {
    t.throws(() => decode(frames), { name: 'ProtocolError', code: 'ERR_PYVENT_PROTOCOL', message: reason }, what)
  }
  t.ok(decode(good), 'the good message decodes')
})

t.test('a body number that overflows a double is malformed, not Infinity', async (t) => {
  const big = '9'.repeat(400)
  const overflowing = ['1e999', '-1e999', '1E+400', '0.5e310', '1.8e308', big, '-' + big, big + '.5', '1' + '0'.repeat(308) + 'e1']
  for (const number of overflowing) {
    for (const [topic, head, body] of [
      ['sig', header(event), `[${number}]`],
      ['sig', header(event), `[{"a":[1,{"b":[${number}]}]}]`],
      ['sig', header(event), `[1,"x",{"n":${number}}]`],
      ['$r.x', header({ k: 'r', i: 'x', ok: true }), `[${number}]`],
      ['$h', header({ k: 'h' }), `[${number}]`]
    ] as const) {
      t.throws(
        () => decode([Buffer.from(topic + '\0'), head, Buffer.from(body)]),
        { name: 'ProtocolError', message: /body frame holds a number too large for a double/ },
        `${body.length > 60 ? body.slice(0, 60) + '…' : body} on ${topic}`
      )
    }
  }
  const finite: [string, unknown][] = [
    ['1e308', 1e308],
    ['-1.7976931348623157e308', -Number.MAX_VALUE],
    ['1e-400', 0],
    ['9'.repeat(300), Number('9'.repeat(300))],
    ['"1e999"', '1e999'],
    ['0.' + '9'.repeat(400), 1]
  ]
  for (const [text, value] of finite) {
    const message = decode([Buffer.from('sig\0'), header(event), Buffer.from(`[${text}]`)])
    t.same((message as { payloads: unknown[] }).payloads, [value], `${text.slice(0, 30)} is a finite number (or a string)`)
  }
})

t.test('topic and header frames over 4096 bytes are malformed', async (t) => {
  t.equal(MAX_ENVELOPE_BYTES, 4096, 'the limit of docs/PROTOCOL.md section 11')
  const probeTopic = (frameBytes: number) => Buffer.from('$p.' + 'n'.repeat(frameBytes - 6) + '.1\0')
  t.equal(probeTopic(4096).length, 4096)
  t.same(decode([probeTopic(4096), header({ k: 'p' }), Buffer.from('[]')]), { kind: 'p', topic: probeTopic(4096).toString('utf8', 0, 4095) })
  t.throws(() => decode([probeTopic(4097), header({ k: 'p' }), Buffer.from('[]')]), {
    name: 'ProtocolError',
    message: /topic frame is longer than 4096 bytes/
  })
  t.throws(() => decode([Buffer.from('s'.repeat(5000) + '\0'), header(event), Buffer.from('[1]')]), { message: /topic frame is longer/ })

  // Unknown header fields are ignored, so padding makes a legal header of any size.
  const padded = (frameBytes: number) => {
    const base = header({ ...event, pad: '' }).length
    return header({ ...event, pad: 'p'.repeat(frameBytes - base) })
  }
  t.equal(padded(4096).length, 4096)
  t.match(decode([Buffer.from('sig\0'), padded(4096), Buffer.from('[1]')]), { kind: 'e', payloads: [1] })
  t.throws(() => decode([Buffer.from('sig\0'), padded(4097), Buffer.from('[1]')]), {
    name: 'ProtocolError',
    message: /header frame is longer than 4096 bytes/
  })
  t.throws(() => decode([Buffer.from('sig\0'), padded(5 * 1024), Buffer.from('[1]')]), { message: /header frame is longer/ }, 'a 5 KiB header')
  const bigBody = Buffer.from(JSON.stringify(['b'.repeat(10_000)]))
  t.match(decode([Buffer.from('sig\0'), header(event), bigBody]), { kind: 'e' }, 'the body is not held to this limit')
})

t.test('JSON keys like __proto__ stay plain data', async (t) => {
  const body = Buffer.from('[{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}]')
  const message = decode([Buffer.from('sig\0'), header(event), body])
  t.equal(message.kind, 'e')
  const payload = (message as { payloads: Record<string, unknown>[] }).payloads[0]!
  t.ok(Object.prototype.hasOwnProperty.call(payload, '__proto__'), '__proto__ is an own property')
  t.equal(Object.getPrototypeOf(payload), Object.prototype, 'the prototype is untouched')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is not polluted')
})

t.test('decode never throws anything but ProtocolError on random bytes', async (t) => {
  let seed = 12345
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)))
  let refused = 0
  for (let i = 0; i < 2000; i++) {
    const frames = Array.from({ length: Math.floor(random() * 5) }, () => bytes(Math.floor(random() * 40)))
    if (i % 3 === 0 && frames.length === 3) frames[0] = Buffer.concat([bytes(5), Buffer.from([0])])
    try {
      decode(frames)
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error
      refused++
    }
  }
  t.equal(refused, 2000, 'every random message is refused with a ProtocolError')
})
