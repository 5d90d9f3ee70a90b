// CURVE: only nodes holding an allowed key can send or receive; others fail in bounded time.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { Test } from 'tap'
import { curveKeyPair, Push, Subscriber } from 'zeromq'
import { Node, RelayUnreachableError } from '../dist/index.js'
import { resolveOptions } from '../dist/options.js'
import { portBlock } from './helpers'

const ports = portBlock(__filename)
const server = curveKeyPair()
const client = curveKeyPair()
const stranger = curveKeyPair()
const curve = {
  serverPublicKey: server.publicKey,
  serverSecretKey: server.secretKey,
  publicKey: client.publicKey,
  secretKey: client.secretKey
}
// What a client-only node holds: no server secret.
const clientCurve = { serverPublicKey: server.publicKey, publicKey: client.publicKey, secretKey: client.secretKey }

/** A relay with CURVE, and an allowed client listening on "secret", both stopped in teardown. */
async function secured(t: Test) {
  const port = ports.next()
  const relay = new Node({ port, curve })
  const member = new Node({ port, server: false, curve: clientCurve })
  t.teardown(async () => {
    await member.stop()
    await relay.stop()
  })
  await relay.ready()
  return { port, relay, member }
}

t.test('nodes with allowed keys talk, encrypted', async (t) => {
  const { relay, member } = await secured(t)
  const got = member.waitFor('secret')
  await member.ready()
  await relay.send('secret', { pin: 1234 })
  t.same((await got).payload, { pin: 1234 })
  member.respond('echo', (text: string) => text.toUpperCase())
  t.equal(await relay.request('echo', 'hush'), 'HUSH', 'requests and replies cross too')
})

t.test('a node without keys, or with a key not allowed, fails in bounded time', async (t) => {
  const { port, relay } = await secured(t)
  const plain = new Node({ port, server: false, readyTimeout: 500 })
  const wrong = new Node({
    port,
    server: false,
    readyTimeout: 500,
    curve: { serverPublicKey: server.publicKey, publicKey: stranger.publicKey, secretKey: stranger.secretKey }
  })
  t.teardown(() => Promise.all([plain.stop(), wrong.stop()]))
  await t.rejects(plain.ready(), RelayUnreachableError)
  await t.rejects(plain.send('secret', {}), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /CURVE/ })
  await t.rejects(wrong.waitFor('secret'), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /allows its publicKey/ })
  t.ok((await relay.stats()).relay!.refused > 0, 'the relay counted the refused key')
})

t.test('without a key nothing can be injected or read', async (t) => {
  const { port, relay, member } = await secured(t)
  const heard: unknown[] = []
  member.connect('secret', (payload) => void heard.push(payload))
  // A raw ZeroMQ peer speaking the pyvent protocol perfectly, but without CURVE.
  const push = new Push({ linger: 0 })
  const spy = new Subscriber({ receiveTimeout: 300, linger: 0 })
  t.teardown(() => {
    push.close()
    spy.close()
  })
  push.connect(`tcp://127.0.0.1:${port + 1}`)
  spy.connect(`tcp://127.0.0.1:${port}`)
  spy.subscribe('')
  const forged = JSON.stringify({ v: 1, k: 'e', s: 'pyvent', n: relay.nodeId, q: 0, t: 1 })
  await push.send(['secret\0', forged, '[{"forged":true}]']).catch(() => undefined)
  const marker = member.waitFor('marker')
  await member.ready()
  await relay.send('secret', { real: true })
  await relay.send('marker', {})
  await marker
  t.same(heard, [{ real: true }], 'only the real event arrived')
  await t.rejects(spy.receive(), { code: 'EAGAIN' }, 'the spy read nothing')
})

t.test('keys from the file named by PYVENT_CURVE_KEYS, with a warning when others may read it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pyvent-curve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'keys.json')
  writeFileSync(file, JSON.stringify(clientCurve))
  chmodSync(file, 0o600)
  const warnings: Error[] = []
  const onWarning = (warning: Error) => warnings.push(warning)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  t.same(resolveOptions({}, { PYVENT_CURVE_KEYS: file }).curve, clientCurve)
  chmodSync(file, 0o644)
  resolveOptions({}, { PYVENT_CURVE_KEYS: file })
  await new Promise((resolve) => setImmediate(resolve))
  t.match(warnings, [{ name: 'SecurityWarning', code: 'PYVENT_KEY_FILE_MODE', message: /chmod 600/ }])
  t.throws(() => resolveOptions({}, { PYVENT_CURVE_KEYS: join(dir, 'missing.json') }), { name: 'TypeError', message: /cannot be read/ })
  writeFileSync(file, '{not json')
  t.throws(() => resolveOptions({}, { PYVENT_CURVE_KEYS: file }), { name: 'TypeError', message: /not valid JSON/ })
  t.throws(() => new Node({ curve: { ...clientCurve, publicKey: 'short' } }), { name: 'TypeError', message: /curve"\.publicKey/ })
  t.throws(() => new Node({ curve: { ...clientCurve, allowedKeys: ['x'] } }), { name: 'TypeError', message: /allowedKeys/ })
})

t.test('two CURVE relays in one process (two ports) each have their own gatekeeper', async (t) => {
  const relays = [new Node({ port: ports.next(), curve }), new Node({ port: ports.next(), curve })]
  t.teardown(() => Promise.all(relays.map((relay) => relay.stop())))
  for (const relay of relays) {
    t.ok(await relay.startServer())
    const got = relay.waitFor('own')
    await relay.ready()
    await relay.send('own', relay.options.port)
    t.equal((await got).payload, relay.options.port)
  }
})

t.test('a node without the server secret never hosts the relay', async (t) => {
  const node = new Node({ port: ports.next(), curve: clientCurve, readyTimeout: 300 })
  t.teardown(() => node.stop())
  t.notOk(await node.startServer())
})
