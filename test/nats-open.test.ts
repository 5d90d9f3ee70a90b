// The NATS engine's edges: NATS's own authentication (user/password, token),
// a plain NATS client speaking the text protocol over a socket in both
// directions, malformed input counted, the subject escaping, and the error
// when the client package is missing.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tcp, Socket } from 'node:net'
import t, { type Test } from 'tap'
import { Node, type NodeOptions } from '../dist/index.js'
import { deadline, fixture, portBlock, spawnNode, spawnProcess, until } from './helpers'
import { natsRequirement, startServer } from './nats-cluster'
import { requireSystem } from './requires'
// eslint-disable-next-line @typescript-eslint/no-require-imports
const subjects = require('../dist/nats/subjects.js') as typeof import('../src/nats/subjects')

const ports = portBlock(__filename)

function nodeOn(t: Test, url: string, extra: NodeOptions = {}): Node {
  const node = new Node({ url, ...extra })
  t.teardown(() => node.stop())
  return node
}

t.test('names become subject tokens NATS reads as one literal token, and back', async (t) => {
  for (const name of ['plain', 'a.b', '*', '>', 'a b', '%', '%00', 'ü', '日本語', 'tab\t', 'x'.repeat(255), '😀', '"quoted"\\']) {
    const token = subjects.escapeToken(name)
    t.notMatch(token, /[.*>\s]/, `${JSON.stringify(name)} -> ${token}`)
    t.equal(subjects.unescapeToken(token), name)
  }
  t.equal(subjects.escapeToken(''), '%00', 'an empty sender segment')
  for (const bad of ['%4', '%zz', '%00x', 'a b', '%C3', '', 'é', '%41', '%2e', 'a%2A%00']) t.equal(subjects.unescapeToken(bad), undefined, `refused: ${JSON.stringify(bad)}`)
  t.same(subjects.parseEventSubject(subjects.eventSubject('e', 'sig.nal', 'a..b.c d')), { kind: 'e', signal: 'sig.nal', sender: 'a..b.c d' })
  t.equal(subjects.parseEventSubject('pyvent.e.%24x.pyvent'), undefined, 'a reserved $ signal is refused')
})

t.test('a missing client package: MissingDependencyError naming it', async (t) => {
  const child = spawnProcess(t, process.execPath, ['--require', fixture('no-nats-client.js'), fixture('nats-ready.js')], { env: { PYVENT_URL: 'nats://127.0.0.1:1' } })
  t.equal(await child.line(/^OK|^ERROR/), 'ERROR ERR_PYVENT_MISSING_DEPENDENCY @nats-io/transport-node')
})

t.test('a host name that does not resolve: the diagnosis says so, not that nothing listens there', async (t) => {
  const node = nodeOn(t, 'nats://no-such-host.invalid:4222', { readyTimeout: 300 })
  await t.rejects(node.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /The host name "no-such-host\.invalid" does not resolve \(\w+\): fix the URL/ })
})

t.test('deadLetters() with no server at the URL: RelayUnreachableError after readyTimeout, not an empty list', async (t) => {
  const nobody = ports.next()
  const node = nodeOn(t, `nats://127.0.0.1:${nobody}`, { readyTimeout: 300 })
  await t.rejects(node.deadLetters('invoice', 'billing'), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /^No NATS server answered/ })
})

t.test('a script that only sends, with no server at the URL, ends by itself once send() gave up', async (t) => {
  const nobody = ports.next()
  const child = spawnNode(t, fixture('engine-send.js'), ['nobody-hears', '1'], { PYVENT_URL: `nats://127.0.0.1:${nobody}` })
  t.match(await child.line(/^SENT|^ERROR/), /^ERROR ERR_PYVENT_RELAY_UNREACHABLE No NATS server answered/)
  t.equal(await child.exit(), 3, 'the exit code the script set: nothing else holds the process')
})

if (requireSystem(t, natsRequirement('the NATS auth and interop tests'))) {
  t.test('no server: ready() says what did not answer and what to do; a node started first waits for its server', async (t) => {
    const port = ports.next()
    const alone = nodeOn(t, `nats://127.0.0.1:${port}`, { readyTimeout: 300 })
    await t.rejects(alone.ready(), {
      code: 'ERR_PYVENT_RELAY_UNREACHABLE',
      message: `No NATS server answered at nats://127.0.0.1:${port} within 300 ms. Nothing accepts connections at nats://127.0.0.1:${port}: start nats-server there (for example \`nats-server -p 4222 -js\`) or fix the URL (option "url" or PYVENT_URL).`
    })
    const latePort = ports.next()
    const early = nodeOn(t, `nats://127.0.0.1:${latePort}`, { readyTimeout: 20_000 })
    // Teardown kills the server before it stops this node: that loss is expected.
    early.on('error', () => undefined)
    const got = new Promise((resolve) => early.connect('late-server', resolve))
    const ready = early.ready()
    await startServer(t, { next: () => latePort }, [], 'late')
    await ready
    await early.send('late-server', { ok: true })
    t.same(await deadline(got, 5000, 'the event'), { ok: true })
  })

  t.test('user and password: the right ones connect, wrong ones say what to check', async (t) => {
    const server = await startServer(t, ports, ['--user', 'alice', '--pass', 's3cret'])
    const good = nodeOn(t, server.url, { nats: { user: 'alice', pass: 's3cret' } })
    const got = new Promise((resolve) => good.connect('secured', resolve))
    await good.ready()
    await good.send('secured', { ok: 1 })
    t.same(await deadline(got, 5000, 'the event'), { ok: 1 })
    const bad = nodeOn(t, server.url, { nats: { user: 'alice', pass: 'wrong' }, readyTimeout: 500 })
    await t.rejects(bad.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE', message: /NATS server answered at nats:\/\/127\.0\.0\.1:\d+ within 500 ms\. Something accepts connections .* credentials/ })
  })

  t.test('a token', async (t) => {
    const server = await startServer(t, ports, ['--auth', 'tok-123'], 'token')
    const node = nodeOn(t, server.url, { nats: { token: 'tok-123' } })
    node.respond('echo', (payload) => payload)
    await node.ready()
    t.same(await node.request('echo', { x: 1 }), { x: 1 })
    const without = nodeOn(t, server.url, { readyTimeout: 500 })
    await t.rejects(without.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE' })
  })

  t.test('an NKey seed', async (t) => {
    const { nkeys } = require('@nats-io/transport-node') as typeof import('@nats-io/transport-node')
    const user = nkeys.createUser()
    const dir = mkdtempSync(join(tmpdir(), 'pyvent-nkey-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const config = join(dir, 'nkey.conf')
    writeFileSync(config, `authorization: { users: [ { nkey: "${user.getPublicKey()}" } ] }\n`)
    const server = await startServer(t, ports, ['-c', config], 'nkey')
    const node = nodeOn(t, server.url, { nats: { nkeySeed: new TextDecoder().decode(user.getSeed()) } })
    const got = new Promise((resolve) => node.connect('signed', resolve))
    await node.ready()
    await node.send('signed', { by: 'nkey' })
    t.same(await deadline(got, 5000, 'the event'), { by: 'nkey' })
    const stranger = nodeOn(t, server.url, { nats: { nkeySeed: new TextDecoder().decode(nkeys.createUser().getSeed()) }, readyTimeout: 500 })
    await t.rejects(stranger.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE' })
  })

  t.test('a creds file (a user JWT and its seed) on a server in operator mode', async (t) => {
    const { nkeys } = require('@nats-io/transport-node') as typeof import('@nats-io/transport-node')
    const dir = mkdtempSync(join(tmpdir(), 'pyvent-creds-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const operator = nkeys.createOperator()
    const account = nkeys.createAccount()
    const limits = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 }
    writeFileSync(join(dir, 'operator.jwt'), natsJwt(operator, operator.getPublicKey(), { type: 'operator' }))
    const accountJwt = natsJwt(operator, account.getPublicKey(), { type: 'account', limits })
    writeFileSync(join(dir, 'server.conf'), `operator: ${JSON.stringify(join(dir, 'operator.jwt'))}\nresolver: MEMORY\nresolver_preload: { ${account.getPublicKey()}: "${accountJwt}" }\n`)
    const creds = (name: string, issuer: typeof account): string => {
      const user = nkeys.createUser()
      const userJwt = natsJwt(issuer, user.getPublicKey(), { type: 'user', pub: {}, sub: {}, subs: -1, data: -1, payload: -1 })
      const seed = new TextDecoder().decode(user.getSeed())
      const file = join(dir, name)
      writeFileSync(file, `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`)
      return file
    }
    const server = await startServer(t, ports, ['-c', join(dir, 'server.conf')], 'creds')
    const node = nodeOn(t, server.url, { nats: { credsFile: creds('good.creds', account) } })
    const got = new Promise((resolve) => node.connect('credentialed', resolve))
    await node.ready()
    await node.send('credentialed', { by: 'creds' })
    t.same(await deadline(got, 5000, 'the event'), { by: 'creds' })
    const forged = nodeOn(t, server.url, { nats: { credsFile: creds('forged.creds', nkeys.createAccount()) }, readyTimeout: 500 })
    await t.rejects(forged.ready(), { code: 'ERR_PYVENT_RELAY_UNREACHABLE' }, 'a user of an account the operator never signed')
  })

  t.test("the server's max_payload bounds a body, less room for the headers", async (t) => {
    const server = await startServer(t, ports, [], 'limits')
    const node = nodeOn(t, server.url, { maxMessageSize: 8 * 1024 * 1024 })
    const got = new Promise((resolve) => node.connect('big', (payload) => resolve((payload as unknown as string).length)))
    await node.ready()
    const limit = 1024 * 1024 - 1024
    await t.rejects(node.send('big', 'x'.repeat(limit)), { code: 'ERR_PYVENT_MESSAGE_TOO_LARGE', limit, message: /over the limit of 1047552: .*a NATS server's max_payload/ })
    // A string's JSON has two quotes, and the body's brackets two more.
    await node.send('big', 'x'.repeat(limit - 4))
    t.equal(await deadline(got, 5000, 'the largest body'), limit - 4, 'the largest body that fits arrives')
  })

  t.test('a plain work group: concurrency caps how many of a member\'s events run at once', async (t) => {
    const server = await startServer(t, ports, [], 'group')
    const member = nodeOn(t, server.url)
    let running = 0
    let most = 0
    const finish: (() => void)[] = []
    let done = 0
    member.connect(
      'batch-job',
      () => {
        running++
        most = Math.max(most, running)
        return new Promise<void>((resolve) =>
          finish.push(() => {
            running--
            done++
            resolve()
          })
        )
      },
      { group: 'crew', concurrency: 2 }
    )
    await member.ready()
    const sender = nodeOn(t, server.url)
    // Six events in one tick: one NATS message, handed to one member as a whole.
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => sender.send('batch-job', { i })))
    await sender.flush()
    while (done < 6) {
      await until(() => finish.length > 0, 5000, 'a running job')
      t.ok(running <= 2, `${running} running`)
      finish.shift()!()
    }
    t.equal(most, 2, 'two at a time, never more')
  })

  t.test('a durable group on a server without JetStream: the error event and ready() say so, without blaming the server; the rest works', async (t) => {
    const server = await startServer(t, ports, [], 'nojs')
    const node = nodeOn(t, server.url, { readyTimeout: 3000 })
    const errors: Error[] = []
    node.on('error', (error) => errors.push(error))
    const plain = new Promise((resolve) => node.connect('kept', resolve))
    node.connect('kept', () => undefined, { group: 'keepers', durable: true })
    const refused = await node.ready().catch((error: unknown) => error)
    t.equal(refused, errors[0], 'ready() rejects with the error the error event had')
    await node.send('kept', { n: 1 })
    t.same(await deadline(plain, 5000, 'the plain listener'), { n: 1 }, 'sending and plain listeners still work')
    t.match(errors[0], { name: 'UnsupportedError', code: 'ERR_PYVENT_UNSUPPORTED', engine: 'nats', message: /^The durable group "keepers" of "kept" needs JetStream, which the NATS server does not have enabled .*: start nats-server with -js/ })
    await t.rejects(node.deadLetters('kept', 'keepers'), { code: 'ERR_PYVENT_UNSUPPORTED', message: /^deadLetters\(\) needs JetStream/ })
  })

  t.test('tls:// URLs: TLS with a certificate the process trusts, refused otherwise', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pyvent-tls-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=pyvent test CA')
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf')
    const server = await startServer(t, ports, ['--tls', '--tlscert', join(dir, 'server.pem'), '--tlskey', join(dir, 'server.key')], 'tls')
    const url = `tls://127.0.0.1:${server.port}`
    const ready = (env: NodeJS.ProcessEnv): Promise<string> => spawnProcess(t, process.execPath, [fixture('nats-ready.js')], { env: { PYVENT_URL: url, ...env } }).line(/^OK|^ERROR/)
    t.equal(await ready({ NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') }), 'OK', 'the server\'s certificate is signed by a CA the process trusts')
    t.match(await ready({}), /^ERROR ERR_PYVENT_RELAY_UNREACHABLE/, 'an unknown CA is refused')
    const plain = await startServer(t, ports, [], 'plain-for-tls')
    t.match(await ready({ PYVENT_URL: `tls://127.0.0.1:${plain.port}`, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') }), /^ERROR ERR_PYVENT_RELAY_UNREACHABLE/, 'tls:// never falls back to plain text')
  })

  t.test('a slow consumer: the server cuts it off, and the node says so and counts it', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pyvent-slow-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const config = join(dir, 'slow.conf')
    // A write to a client that blocks for 250 ms (its socket buffers are full) cuts it off.
    writeFileSync(config, 'write_deadline: "250ms"\n')
    const server = await startServer(t, ports, ['-c', config], 'slow')
    const listener = spawnNode(t, fixture('nats-slow-listener.js'), ['3000'], { PYVENT_URL: server.url })
    await listener.line('READY')
    const sender = nodeOn(t, server.url)
    const payload = { filler: 'x'.repeat(1000) }
    // 20 MB: more than the loopback socket buffers hold for a listener whose event loop is blocked.
    for (let i = 0; i < 20_000; i++) await sender.send('flood', payload)
    await sender.flush()
    t.equal(await listener.line(/^ERROR/), 'ERROR ERR_PYVENT_CONNECTION_LOST', 'reported through the error event')
    const stats = JSON.parse((await listener.line(/^STATS/)).slice(6)) as { disconnects: number; received: number }
    t.ok(stats.disconnects >= 1, `counted: ${stats.disconnects} disconnect(s)`)
    t.ok(stats.received < 20_000, `what the server dropped did not arrive (${stats.received} of 20000)`)
    t.equal(await listener.exit(), 0)
  })

  t.test('a plain NATS client (the text protocol over a socket) sends events pyvent hears and reads the ones it sends', async (t) => {
    const server = await startServer(t, ports, [], 'plain')
    const socket: Socket = tcp({ host: '127.0.0.1', port: server.port })
    t.teardown(() => socket.destroy())
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (text += chunk))
    await once(socket, 'connect')
    socket.write('CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB pyvent.e.greeting.> 1\r\nPING\r\n')
    await until(() => text.includes('PONG'), 5000, 'PONG')

    const node = nodeOn(t, server.url)
    const heard = new Promise<[unknown, string, string, number]>((resolve) => node.connect('order food', (payload, event) => resolve([payload, event.sender, event.node, event.seq]), { sender: 'kiosk' }))
    await node.ready()
    const headers = 'NATS/1.0\r\nPyvent-V: 1\r\nPyvent-Node: plain-client\r\nPyvent-Seq: 7\r\nPyvent-Time: 1700000000000\r\n\r\n'
    const body = '[{"food":"sushi"}]'
    socket.write(`HPUB pyvent.e.order%20food.kiosk.1 ${Buffer.byteLength(headers)} ${Buffer.byteLength(headers) + Buffer.byteLength(body)}\r\n${headers}${body}\r\n`)
    t.same(await deadline(heard, 5000, 'the plain client event'), [{ food: 'sushi' }, 'kiosk.1', 'plain-client', 7])

    // Malformed input is counted, never thrown.
    socket.write('PUB pyvent.e.order%20food.kiosk 3\r\n[1]\r\nPING\r\n')
    await until(async () => (await node.stats()).malformed === 1, 5000, 'the headerless event counted malformed')

    await node.send('greeting', { hello: 'plain' }, { sender: 'pyvent.web' })
    await until(() => text.includes('HMSG pyvent.e.greeting.pyvent.web 1'), 5000, 'the event at the plain client')
    const message = text.slice(text.indexOf('HMSG'))
    t.match(message, /Pyvent-V: 1\r\n/)
    t.match(message, new RegExp(`Pyvent-Node: ${node.nodeId}\\r\\n`))
    t.match(message, /Pyvent-Seq: 0\r\n/)
    t.match(message, /\r\n\r\n\[\{"hello":"plain"\}\]\r\n/)

    // A plain NATS request gets a pyvent responder's answer on its reply subject.
    node.respond('shout', (payload) => String((payload as unknown as { text: string }).text).toUpperCase())
    await node.ready()
    socket.write('SUB _INBOX.plain.* 2\r\n')
    const ask = '[{"text":"hi"}]'
    socket.write(`HPUB pyvent.q.shout.kiosk _INBOX.plain.1 ${Buffer.byteLength(headers)} ${Buffer.byteLength(headers) + ask.length}\r\n${headers}${ask}\r\n`)
    await until(() => text.includes('HMSG _INBOX.plain.1 2'), 5000, 'the reply at the plain client')
    const reply = text.slice(text.indexOf('HMSG _INBOX.plain.1 2'))
    t.match(reply, /Pyvent-Ok: true\r\n/)
    t.match(reply, /\r\n\r\n\["HI"\]\r\n/)
  })
}

/** A NATS JWT (v2) for `subject`, signed by `issuer`: what nsc writes, by hand. */
function natsJwt(issuer: { getPublicKey(): string; sign(data: Uint8Array): Uint8Array }, subject: string, nats: Record<string, unknown>): string {
  const b64 = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url')
  const claims: Record<string, unknown> = { iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name: subject.slice(0, 8), sub: subject, nats: { ...nats, version: 2 } }
  claims.jti = createHash('sha256').update(JSON.stringify(claims)).digest('base64url')
  const signed = `${b64(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64(JSON.stringify(claims))}`
  return `${signed}.${b64(issuer.sign(Buffer.from(signed)))}`
}
