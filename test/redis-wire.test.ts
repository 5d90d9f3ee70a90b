// The Redis engine's message format (src/redis/wire.ts), without a server: what
// it writes reads back, and anything else is refused (the connection drops and
// counts it as malformed), never thrown.
import t from 'tap'
import { decodeEvent, decodeReply, eventBody, eventHead, groupId, replyBody, channelSignal, eventChannel } from '../dist/redis/wire.js'
import { maskUrl } from '../dist/redis/load.js'

t.test('an event batch and a request read back as written', async (t) => {
  const head = eventHead('shop.eu', 'node-1', 1234)
  t.same(decodeEvent(eventBody(head, 7, ['{"a":1}', '"x"', 'null'])), { sender: 'shop.eu', node: 'node-1', seq: 7, time: 1234, payloads: [{ a: 1 }, 'x', null] })
  const request = decodeEvent(eventBody(eventHead('s', 'n', 5, 'n.1'), 0, ['[1,2]']))
  t.same(request, { sender: 's', node: 'n', seq: 0, time: 5, payloads: [[1, 2]], request: 'n.1' })
  t.same(decodeReply(replyBody('n.1', false, '{"name":"E","message":"m"}')), { request: 'n.1', ok: false, value: { name: 'E', message: 'm' } })
})

t.test('names with quotes, backslashes and non-ASCII survive', async (t) => {
  const sender = 'a "quoted" \\ sender ✓'
  t.equal(decodeEvent(eventBody(eventHead(sender, 'n', 1), 0, ['1']))?.sender, sender)
  t.equal(channelSignal(eventChannel('a*b [c]?')), 'a*b [c]?')
  t.equal(groupId('sig', 'gr"oup'), '["sig","gr\\"oup"]')
})

t.test('a missing time reads as now; anything malformed is refused', async (t) => {
  const before = Date.now()
  t.ok((decodeEvent('{"v":1,"s":"cli","n":"shell","q":0,"p":[1]}')?.time ?? 0) >= before)
  const bad = [
    'not json',
    '[]',
    'null',
    '{"s":"cli","n":"shell","q":0,"p":[1]}',
    '{"v":2,"s":"cli","n":"shell","q":0,"p":[1]}',
    '{"v":1,"s":"","n":"shell","q":0,"p":[1]}',
    '{"v":1,"s":"cli","n":3,"q":0,"p":[1]}',
    '{"v":1,"s":"cli","n":"shell","q":-1,"p":[1]}',
    '{"v":1,"s":"cli","n":"shell","q":1.5,"p":[1]}',
    '{"v":1,"s":"cli","n":"shell","q":0,"p":[]}',
    '{"v":1,"s":"cli","n":"shell","q":0,"p":{}}',
    '{"v":1,"s":"cli","n":"shell","q":0,"t":"now","p":[1]}',
    '{"v":1,"s":"cli","n":"shell","q":0,"i":"","p":[1]}'
  ]
  for (const text of bad) t.equal(decodeEvent(text), undefined, text)
  for (const text of ['{"v":1,"i":"x","ok":"yes","p":[1]}', '{"v":1,"i":"x","ok":true,"p":[1,2]}', '{"v":1,"ok":true,"p":[1]}']) {
    t.equal(decodeReply(text), undefined, text)
  }
  t.equal(channelSignal('pyvent:e:'), undefined, 'an event channel names a signal')
  t.equal(channelSignal('other:e:x'), undefined)
})

t.test('URLs are shown with their password masked', async (t) => {
  t.equal(maskUrl('redis://user:secret@host:6379/2'), 'redis://user:***@host:6379/2')
  t.equal(maskUrl('rediss://:secret@host'), 'rediss://:***@host')
  t.equal(maskUrl('redis://host:6379'), 'redis://host:6379')
})
