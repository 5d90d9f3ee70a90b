/**
 * The relay: an XPublisher bound on `port` and a Pull socket bound on
 * `port + 1`; every message pulled is published unchanged. It runs in a
 * worker thread of the hosting process, so its receive loop neither starves
 * the host's own event loop nor keeps the host process alive.
 *
 * This file has both halves: {@link runRelay} (inside the worker) and
 * {@link RelayHost} (in the hosting thread).
 *
 * @module
 */
import { EventEmitter, once } from 'node:events'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { MessagePort, Worker } from 'node:worker_threads'
import createDebug from 'debug'
import { Context, Pull, XPublisher } from 'zeromq'
import { encodeControl, Frames, HEARTBEAT_TOPIC, MAX_TOPIC_BYTES, parseGroupTopic, topicFrame } from './codec'
import { isEAGAIN } from './client'
import { endpoint, frameLimit, isIPv6, ResolvedOptions } from './options'
import { ZapHandler } from './security'

const debug = createDebug('pyvent:relay')

const DOLLAR = 0x24
const LETTER_H = 0x68
const LETTER_G = 0x67

/** Longest pause between two attempts to publish to a full listener queue (lossless mode). */
const MAX_RETRY_WAIT = 10

/** Longest wait, after the relay worker ends, for the OS to report its ports free. */
const RELEASE_TIMEOUT = 1000

/** What the hosting thread hands the relay worker. */
export interface RelayConfig {
  options: ResolvedOptions
  /** Milliseconds to wait after binding before forwarding: lets clients of a dead relay resubscribe first. */
  hold: number
}

/** Counters of one relay. */
export interface RelayStats {
  /** Messages (batches) pulled from senders and published (heartbeats and group copies not counted). */
  forwarded: number
  /** Messages a socket error kept from being published (other than a full queue). */
  failed: number
  /** Times a full listener queue made a lossless relay wait before forwarding. */
  stalls: number
  /** Messages refused because they did not have the frame layout of a pyvent message. */
  malformed: number
  /** Connections refused because their CURVE key is not allowed (CURVE only). */
  refused: number
}

type ToHost = { type: 'bound' } | { type: 'busy'; reason: string } | { type: 'stats'; stats: RelayStats }
type ToRelay = { type: 'stop' } | { type: 'stats' }


/**
 * Runs a relay until told to stop. Called in the relay worker.
 * @internal
 */
export async function runRelay(config: RelayConfig, port: MessagePort): Promise<void> {
  const { options } = config
  const post = (message: ToHost): void => port.postMessage(message)
  const stats: RelayStats = { forwarded: 0, failed: 0, stalls: 0, malformed: 0, refused: 0 }
  const hwm = options.highWaterMark
  const curve = options.curve
  // A context of its own: ZeroMQ has one ZAP endpoint per context, and two relays
  // in one process (two ports) would otherwise fight over it.
  const context = new Context()
  let zap: ZapHandler | undefined
  let keys = {}
  if (curve !== undefined) {
    zap = new ZapHandler(curve.allowedKeys ?? [curve.publicKey], context)
    keys = { curveServer: true, curveSecretKey: curve.serverSecretKey ?? null, zapDomain: 'pyvent' }
  }
  const pub = new XPublisher({
    context,
    ...keys,
    ipv6: isIPv6(options),
    // Lossless: a full listener queue makes the relay wait, which backs up to the
    // senders. Drop mode: ZeroMQ drops for that listener only; the listener sees
    // the gap in the sender's sequence numbers and counts it.
    noDrop: options.delivery === 'lossless',
    sendHighWaterMark: hwm,
    linger: options.linger,
    // Inbound frames on the publisher are subscriptions: topics, at most a group topic.
    maxMessageSize: MAX_TOPIC_BYTES + 16
  })
  const pull = new Pull({ context, ...keys, ipv6: isIPv6(options), receiveHighWaterMark: hwm, maxMessageSize: frameLimit(options), linger: 0 })
  try {
    await zap?.start()
    await pub.bind(endpoint(options, 'pub'))
    await pull.bind(endpoint(options, 'pull'))
  } catch (error) {
    // Whichever bind succeeded is released, so this node is a plain client.
    pub.close()
    pull.close()
    zap?.close()
    debug('bind failed: %s', (error as Error).message)
    post({ type: 'busy', reason: (error as Error).message })
    port.close()
    return
  }
  debug('bound %s and %s', endpoint(options, 'pub'), endpoint(options, 'pull'))
  post({ type: 'bound' })

  let stopping = false
  /** A publish gave up because the relay stopped while a listener's queue was full. */
  let abandoned = false
  const lossless = options.delivery === 'lossless'
  const groups = new GroupTable()
  // A no-drop publisher with a full listener queue fails the send with EAGAIN at
  // once instead of waiting (libzmq reports it writable regardless), so lossless
  // mode waits and retries itself, backing off to MAX_RETRY_WAIT. While it waits
  // it reads nothing more, which is what slows the senders down.
  const publishOnce = async (frames: Frames): Promise<boolean> => {
    for (let wait = 0; ; wait = Math.min(wait === 0 ? 1 : wait * 2, MAX_RETRY_WAIT)) {
      try {
        if (pub.readable) await readSubscriptions(pub, groups)
        await pub.send(frames)
        return true
      } catch (error) {
        if (stopping) {
          abandoned = true
          return false
        }
        if (!lossless || !isEAGAIN(error)) {
          stats.failed++
          debug('publish failed: %s', (error as Error).message)
          return false
        }
        stats.stalls++
        await new Promise((resolve) => (wait === 0 ? setImmediate(resolve) : setTimeout(resolve, wait)))
      }
    }
  }
  // One send at a time: zeromq.js allows a single pending send per socket.
  let sending: Promise<boolean> = Promise.resolve(true)
  const publish = (frames: Frames): Promise<boolean> => (sending = sending.then(() => publishOnce(frames)))

  const heartbeat = encodeControl('h', HEARTBEAT_TOPIC)
  // At most one heartbeat waits at a time: a relay stalled by a slow listener
  // must not pile them up.
  let beating = false
  const beatOnce = (): void => {
    if (beating) return
    beating = true
    void publish(heartbeat).then(() => {
      beating = false
    })
  }
  const beat = setInterval(beatOnce, options.heartbeatInterval)
  beatOnce()

  port.on('message', (message: ToRelay) => {
    if (message.type === 'stats') post({ type: 'stats', stats: { ...stats, refused: zap?.refused ?? 0 } })
    else if (message.type === 'stop') {
      stopping = true
      clearInterval(beat)
      // Let a publish in progress finish, but no longer than linger: a listener
      // that stopped reading must not hold the relay open.
      let timer: NodeJS.Timeout | undefined
      const lingered = new Promise<void>((resolve) => (timer = setTimeout(resolve, options.linger)))
      let drained = false
      void sending.then(() => (drained = true))
      const since = Date.now()
      void Promise.race([sending, lingered]).then(() => {
        clearTimeout(timer)
        pull.close()
        // A listener that is not taking messages: drop what is queued for it now,
        // rather than wait another linger at exit. Otherwise what is left of linger.
        pub.linger = abandoned || !drained ? 0 : Math.max(0, options.linger - (Date.now() - since))
        pub.close()
        zap?.close()
        port.close()
        debug('stopped')
      })
    }
  })

  if (config.hold > 0) await new Promise((resolve) => setTimeout(resolve, config.hold))
  try {
    for (;;) {
      const frames = await pull.receive()
      // The relay never parses payloads; it only refuses what cannot be a pyvent message.
      const topic = frames[0]
      if (frames.length !== 3 || topic === undefined || topic.length < 2 || topic[topic.length - 1] !== 0) {
        stats.malformed++
        debug('dropped a message of %d frames that is not a pyvent message', frames.length)
        continue
      }
      // Heartbeats and group shares are the relay's own: a client that sends one is forging it.
      if (topic[0] === DOLLAR && (topic[1] === LETTER_H || topic[1] === LETTER_G)) {
        stats.malformed++
        debug('dropped a message of %d frames on the relay-only topic %s', frames.length, topic.toString('utf8', 0, topic.length - 1))
        continue
      }
      if (await publish(frames)) stats.forwarded++
      // Each work group of the signal gets the same frames once more, on one member's topic.
      if (groups.size > 0) for (const member of groups.pick(topic)) await publish([member, frames[1] as Buffer, frames[2] as Buffer])
    }
  } catch (error) {
    if (stopping) return
    // A relay that cannot read any more must not linger heartbeating as if it were
    // alive: close, end the worker, and let the host (or a survivor) take over.
    debug('receive loop ended: %s', (error as Error).message)
    clearInterval(beat)
    pull.close()
    pub.close()
    zap?.close()
    port.close()
  }
}

/**
 * Work groups, learnt from the subscriptions the publisher reports: a member
 * subscribes to its own group topic, and its subscription goes away when it
 * unsubscribes or its connection drops. Only topics are read, never payloads.
 */
class GroupTable {
  /** Signal topic frame (latin1, NUL included) -> group -> members' topic frames. */
  readonly #bySignal = new Map<string, Map<string, { members: Buffer[]; next: number }>>()

  get size(): number {
    return this.#bySignal.size
  }

  /** Applies one subscription message from the publisher (first byte 1: subscribe, 0: unsubscribe). */
  update(frame: Buffer): void {
    const topic = frame.subarray(1)
    const parts = topic[topic.length - 1] === 0 ? parseGroupTopic(topic.toString('utf8', 0, topic.length - 1)) : undefined
    if (parts === undefined) return
    const [signal, group] = parts
    const key = topicFrame(signal).toString('latin1')
    let groups = this.#bySignal.get(key)
    if (frame[0] === 1) {
      if (groups === undefined) this.#bySignal.set(key, (groups = new Map()))
      const entry = groups.get(group) ?? { members: [], next: 0 }
      if (!entry.members.some((member) => member.equals(topic))) entry.members.push(Buffer.from(topic))
      groups.set(group, entry)
      debug('group %s of %s: %d members', group, signal, entry.members.length)
    } else if (frame[0] === 0 && groups !== undefined) {
      // Only 0 is an unsubscription; other first bytes are not subscription messages at all.
      const entry = groups.get(group)
      if (entry === undefined) return
      entry.members = entry.members.filter((member) => !member.equals(topic))
      debug('group %s of %s: %d members', group, signal, entry.members.length)
      if (entry.members.length > 0) return
      groups.delete(group)
      if (groups.size === 0) this.#bySignal.delete(key)
    }
  }

  /** One member topic per group of the signal whose topic frame is `topic`, taken in turn. */
  pick(topic: Buffer): Buffer[] {
    const groups = this.#bySignal.get(topic.toString('latin1'))
    if (groups === undefined) return []
    const picked: Buffer[] = []
    for (const entry of groups.values()) {
      picked.push(entry.members[entry.next % entry.members.length] as Buffer)
      entry.next = (entry.next + 1) % entry.members.length
    }
    return picked
  }
}

/**
 * Reads the subscription messages the publisher has queued. Called before every
 * publish (never concurrently: one receive at a time), so the group table is
 * current for every message forwarded after a subscription arrived: a member
 * whose readiness probe came back is already in its group.
 */
async function readSubscriptions(pub: XPublisher, groups: GroupTable): Promise<void> {
  while (pub.readable) {
    const [frame] = await pub.receive()
    if (frame === undefined || frame.length === 0) continue
    if (debug.enabled) debug('%s %s', frame[0] === 1 ? 'subscribe' : 'unsubscribe', JSON.stringify(frame.toString('utf8', 1)))
    groups.update(frame)
  }
}

/** Resolves `true` when `host:port` can be bound now; warns once when `host` is not this machine's. */
function isFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRNOTAVAIL' && !warnedHosts.has(host)) {
        warnedHosts.add(host)
        process.emitWarning(
          `host ${host} is not an address of this machine, so this node can neither host the relay nor take it over; set server: false, or give every node that may serve an address the clients reach (a shared virtual IP).`,
          { type: 'PyventWarning', code: 'PYVENT_HOST_NOT_LOCAL' }
        )
      }
      resolve(false)
    })
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

const warnedHosts = new Set<string>()

/**
 * Owns the relay worker of a hosting node. Emits `'lost'` if the worker ends
 * without being asked to.
 * @internal
 */
export class RelayHost extends EventEmitter {
  #worker: Worker | undefined
  #options: ResolvedOptions | undefined
  #stopping = false

  /**
   * Tries to become the relay: resolves `true` if this thread now hosts it,
   * `false` if the address is taken (by another relay or anything else).
   */
  async start(options: ResolvedOptions, hold: number): Promise<boolean> {
    // With CURVE, only a node holding the relay's secret key can serve.
    if (options.curve !== undefined && options.curve.serverSecretKey === undefined) return false
    // Cheap check first, so a client does not pay for a worker when a relay is already there.
    const free = (await isFree(options.host, options.port)) && (await isFree(options.host, options.port + 1))
    if (!free) return false
    this.#options = options
    const config: RelayConfig = { options, hold }
    // The relay is plain library code: it needs none of the host's loaders or flags
    // (a TypeScript loader, an inspector), which would only slow its start.
    const worker = new Worker(join(__dirname, 'relay-worker.js'), { workerData: config, execArgv: [] })
    const [reply] = (await once(worker, 'message')) as [ToHost]
    if (reply.type !== 'bound') {
      await once(worker, 'exit')
      return false
    }
    // The relay lives as long as its host process, but never keeps that process alive.
    worker.unref()
    this.#worker = worker
    this.#stopping = false
    worker.once('exit', (code) => {
      this.#worker = undefined
      if (!this.#stopping) {
        debug('relay worker ended unexpectedly (code %d)', code)
        this.emit('lost')
      }
    })
    worker.on('error', (error) => debug('relay worker error: %s', error.message))
    return true
  }

  /** Whether this thread hosts a running relay. */
  get running(): boolean {
    return this.#worker !== undefined
  }

  /** The relay's counters, or `undefined` when not hosting. */
  async stats(): Promise<RelayStats | undefined> {
    const worker = this.#worker
    if (worker === undefined) return undefined
    const exited = once(worker, 'exit').then(() => undefined)
    worker.postMessage({ type: 'stats' } satisfies ToRelay)
    for (;;) {
      // A relay that ends meanwhile has no counters to give.
      const reply = await Promise.race([once(worker, 'message').then(([message]) => message as ToHost), exited])
      if (reply === undefined) return undefined
      if (reply.type === 'stats') return reply.stats
    }
  }

  /** Stops the relay and resolves when its sockets are closed and its ports free. */
  async stop(): Promise<void> {
    const worker = this.#worker
    if (worker === undefined) return
    this.#stopping = true
    // Keep the process alive until the relay has flushed and released its ports.
    worker.ref()
    const exited = once(worker, 'exit')
    worker.postMessage({ type: 'stop' } satisfies ToRelay)
    await exited
    // ZeroMQ tears listening sockets down on its I/O thread after close(), a moment
    // after the worker is gone; stop() promises free ports, so wait for that moment.
    // (Unbinding first would be the direct way, but it trips an assertion in libzmq
    // 4.3.5 when an XPUB with live pipes is unbound.)
    const { host, port } = this.#options as ResolvedOptions
    const deadline = Date.now() + RELEASE_TIMEOUT
    while (Date.now() < deadline && !((await isFree(host, port)) && (await isFree(host, port + 1)))) {
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }
}
