// Which queue a message waits in when a lossless relay must park it: its sending
// node's, read from the header or a probe's topic; otherwise its topic's.
import t from 'tap'
import { encodeControl, encodeEvents, encodeReply } from '../dist/codec.js'
import { parkingKey } from '../dist/zmq/parking.js'
import { groupTopic, probeTopic, replyTopic, responderTopic, topicFrame } from '../dist/topics.js'

const NODE = '6f1c3c2e-6a0b-4d47-9a55-0c1d2a3b4c5d'
const wire = (frames: (Buffer | string)[]): Buffer[] => frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f))
const batch = (topic: Buffer, sender = 'pyvent') => encodeEvents(topic, { kind: 'e', sender, seq: 0, time: 1 }, NODE, ['{}'])

t.test("events, requests handed to responders and group shares wait in their node's queue", async (t) => {
  t.equal(parkingKey(batch(topicFrame('order-food'))), NODE, 'an event batch, as written')
  t.equal(parkingKey(wire(batch(topicFrame('order-food')))), NODE, 'and as received')
  t.equal(parkingKey(batch(topicFrame(responderTopic('echo', 'r1')))), NODE, 'a request handed to a responder')
  t.equal(parkingKey(batch(topicFrame(groupTopic('jobs', 'g', 'm1')))), NODE, "a member's share")
  for (const sender of ['a","n":"forged', 'a\\",\\"n\\":\\"x', '{"n":"x"}']) {
    t.equal(parkingKey(batch(topicFrame('order-food'), sender)), NODE, `a sender name cannot pose as the node: ${sender}`)
  }
})

t.test('a header written another way is parsed; one that cannot be read waits with its topic', async (t) => {
  const topic = topicFrame('order-food')
  t.equal(parkingKey([topic, Buffer.from(`{"n": "${NODE}","v":1,"k":"e"}`), Buffer.from('[{}]')]), NODE, 'spaces, n first')
  t.equal(parkingKey([topic, Buffer.from(`{"v":1,"n":"a\\u0062c"}`), Buffer.from('[{}]')]), 'abc', 'an escape in the node id')
  t.equal(parkingKey([topic, Buffer.from('not json'), Buffer.from('[]')]), '$order-food\0', 'malformed')
  t.equal(parkingKey([topic, Buffer.from('{"v":1,"n":"$h"}'), Buffer.from('[]')]), '$order-food\0', 'a node id that would pose as an internal queue')
})

t.test("probes wait behind their node's messages; replies and heartbeats in queues of their own", async (t) => {
  t.equal(parkingKey(encodeControl('p', probeTopic(NODE, 7))), NODE)
  t.equal(parkingKey(encodeControl('h', '$h')), '$h')
  t.equal(parkingKey(encodeReply(replyTopic(NODE), 'q1', true, '1')), `$${replyTopic(NODE)}\0`)
})
