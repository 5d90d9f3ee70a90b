// The payload rule on the send side: plain objects, arrays, strings, finite
// numbers, booleans and null go out as JSON; an object with toJSON goes out as
// what toJSON returns; everything else JSON would change is refused, naming where.
import t from 'tap'
import { encodePayload } from '../dist/payload.js'
import { InvalidPayloadError } from '../dist/index.js'

const LIMIT = 1 << 20
const encode = (payload: unknown): string => encodePayload(payload, LIMIT)

class Point {
  constructor(
    public x: number,
    public y: number
  ) {}
}

class Money {
  constructor(
    readonly cents: number,
    readonly currency: string
  ) {}
  toJSON(): unknown {
    return { amount: this.cents / 100, currency: this.currency }
  }
}

t.test('each kind JSON would change is refused, with its path', async (t) => {
  const cycle: Record<string, unknown> = { a: { b: {} } }
  ;(cycle.a as { b: Record<string, unknown> }).b.back = cycle
  const sparse = [1, , 3] // eslint-disable-line no-sparse-arrays
  const cases: [string, unknown, RegExp][] = [
    ['an Error', { err: new Error('boom') }, /^Cannot send an Error at payload\.err: JSON loses its message/],
    ['an Error subclass', [new TypeError('x')], /^Cannot send a TypeError at payload\[0\]:/],
    ['a RegExp', { items: [1, 2, 3, /x/g] }, /^Cannot send a RegExp at payload\.items\[3\]: JSON turns it into \{\}/],
    ['a Uint8Array', { data: new Uint8Array([1, 2]) }, /^Cannot send a Uint8Array at payload\.data: JSON has no bytes/],
    ['a Float64Array', [[new Float64Array(2)]], /^Cannot send a Float64Array at payload\[0\]\[0\]:/],
    ['a Buffer (which has toJSON)', Buffer.from('hi'), /^Cannot send a Buffer at payload: JSON has no bytes/],
    ['a nested Buffer', { file: { body: Buffer.from('hi') } }, /^Cannot send a Buffer at payload\.file\.body:/],
    ['a DataView', { v: new DataView(new ArrayBuffer(4)) }, /^Cannot send a DataView at payload\.v:/],
    ['an ArrayBuffer', { b: new ArrayBuffer(4) }, /^Cannot send an ArrayBuffer at payload\.b:/],
    ['a class instance', { user: { name: new Point(1, 2) } }, /^Cannot send a Point \(a class instance without toJSON\) at payload\.user\.name:/],
    ['an object with a prototype', { o: Object.create({ inherited: 1 }) }, /^Cannot send an Object \(a class instance without toJSON\) at payload\.o:/],
    ['a boxed number', { n: new Number(1) }, /^Cannot send a Number .* at payload\.n:/],
    ['a Promise', { p: Promise.resolve(1) }, /^Cannot send a Promise .* at payload\.p:/],
    ['a Map', { 'odd key': new Map() }, /^Cannot send a Map at payload\["odd key"\]: JSON turns it into \{\}/],
    ['a Set', { s: new Set([1]) }, /^Cannot send a Set at payload\.s:/],
    ['a WeakMap', { w: new WeakMap() }, /^Cannot send a WeakMap .* at payload\.w:/],
    ['a function', { 'odd key': () => 1 }, /^Cannot send a function at payload\["odd key"\]: JSON cannot carry it/],
    ['a symbol', { s: [Symbol('x')] }, /^Cannot send a symbol at payload\.s\[0\]:/],
    ['a BigInt', { n: 10n }, /^Cannot send a BigInt at payload\.n:/],
    ['NaN', { m: { n: NaN } }, /^Cannot send NaN at payload\.m\.n: JSON turns it into null/],
    ['Infinity', [Infinity], /^Cannot send Infinity at payload\[0\]:/],
    ['-Infinity', -Infinity, /^Cannot send -Infinity at payload:/],
    ['undefined in an array', { list: [1, undefined] }, /^Cannot send undefined in an array at payload\.list\[1\]: JSON turns it into null/],
    ['a hole in an array', { list: sparse }, /^Cannot send undefined in an array at payload\.list\[1\]:/],
    ['a cycle', cycle, /^Cannot send a circular reference at payload\.a\.b\.back:/],
    ['a toJSON result JSON would change', { when: { toJSON: () => new Map() } }, /^Cannot send a Map at payload\.when:/],
    ['something inside a toJSON result', { m: { toJSON: () => ({ list: [NaN] }) } }, /^Cannot send NaN at payload\.m\.list\[0\]:/],
    ['a key that needs quotes', { 'a.b': { '': { '1x': NaN } } }, /^Cannot send NaN at payload\["a\.b"\]\[""\]\["1x"\]:/]
  ]
  for (const [what, payload, message] of cases) {
    const error = t.throws(() => encode(payload), { name: 'InvalidPayloadError', code: 'ERR_PYVENT_INVALID_PAYLOAD', message }, what)
    t.ok(error instanceof InvalidPayloadError && error instanceof TypeError, `${what}: an InvalidPayloadError, a TypeError`)
  }
})

t.test('a shared object is not a cycle', async (t) => {
  const shared = { n: 1 }
  t.equal(encode({ a: shared, b: [shared, shared], d: new Date(0) }), '{"a":{"n":1},"b":[{"n":1},{"n":1}],"d":"1970-01-01T00:00:00.000Z"}')
  const second = { bad: NaN }
  t.throws(() => encode({ a: { ok: 1 }, b: { c: second } }), { message: /at payload\.b\.c\.bad:/ }, 'the path follows the current occurrence')
})

t.test('a very deep path is cut short', async (t) => {
  let deep: unknown = { bad: NaN }
  for (let i = 0; i < 50; i++) deep = [deep]
  t.throws(() => encode(deep), { message: /^Cannot send NaN at payload…(\[0\]){31}\.bad:/ })
})

t.test('nesting deeper than the stack is refused as too deep, not as a cycle', async (t) => {
  for (const depth of [20_000, 200_000]) {
    let deep: Record<string, unknown> = {}
    const top = deep
    for (let i = 0; i < depth; i++) deep = (deep.a = {}) as Record<string, unknown>
    t.throws(() => encode(top), { name: 'InvalidPayloadError', code: 'ERR_PYVENT_INVALID_PAYLOAD', message: /^Cannot send this payload: it is nested too deeply for JSON \(the stack ran out near payload…(\.a)+\)\. Send flatter data\.$/ }, `${depth} levels`)
  }
  const cycle: Record<string, unknown> = { a: {} }
  ;(cycle.a as Record<string, unknown>).back = cycle
  t.throws(() => encode(cycle), { message: /^Cannot send a circular reference at payload\.a\.back:/ }, 'a cycle is still named a cycle')
  const badDate = { toJSON: () => new Date(NaN).toISOString() }
  t.throws(() => encode({ when: badDate }), { message: /^Cannot send this payload: Invalid time value/ }, "another RangeError keeps its own message")
})

t.test('plain data, toJSON and null-prototype objects are accepted as JSON writes them', async (t) => {
  const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, inner: Object.assign(Object.create(null), { b: [true] }) })
  const accepted: [string, unknown, string][] = [
    ['null', null, 'null'],
    ['a string', 'x', '"x"'],
    ['a number', -1.5, '-1.5'],
    ['a boolean', false, 'false'],
    ['a plain object', { i: 1, name: 'x', tags: ['a', 'b'], none: null }, '{"i":1,"name":"x","tags":["a","b"],"none":null}'],
    ['an undefined property', { a: undefined, b: 1 }, '{"b":1}'],
    ['a null-prototype object', bare, '{"a":1,"inner":{"b":[true]}}'],
    ['a Date', { at: new Date(0) }, '{"at":"1970-01-01T00:00:00.000Z"}'],
    ['a Date alone', new Date(0), '"1970-01-01T00:00:00.000Z"'],
    ['a class with toJSON', { price: new Money(1250, 'EUR') }, '{"price":{"amount":12.5,"currency":"EUR"}}'],
    ['a plain object with toJSON', { x: { toJSON: () => 'seven' } }, '{"x":"seven"}'],
    ['an object whose toJSON is not a method', { x: { toJSON: 1 } }, '{"x":{"toJSON":1}}']
  ]
  for (const [what, payload, json] of accepted) t.equal(encode(payload), json, what)
  let deep: unknown = { d: new Date(0) }
  for (let i = 0; i < 40; i++) deep = { n: deep }
  t.equal(encode(deep), JSON.stringify(deep), 'nesting beyond the quick check still works')
})

t.test('a getter that throws is reported as an InvalidPayloadError', async (t) => {
  const boom = new Error('no access')
  const payload = {
    get secret(): number {
      throw boom
    }
  }
  t.throws(() => encode(payload), { name: 'InvalidPayloadError', message: /no access/, cause: boom })
  const withDate = {
    d: new Date(0),
    get secret(): number {
      throw boom
    }
  }
  t.throws(() => encode(withDate), { name: 'InvalidPayloadError', message: /no access/, cause: boom }, 'also on the precise path')
})
