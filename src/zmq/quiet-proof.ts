/**
 * Proof of delivery for a node that went quiet. What a node sends counts as
 * unconfirmed until a probe returns through the relay behind it (probes.ts),
 * and an exit with unconfirmed messages warns on stderr (lifetime.ts). A
 * responder that answered requests an hour ago, or a script that sent and then
 * waited for something else, would warn about all of it at its
 * `process.exit()`, although the relay passed it on long before. So a node
 * that has unconfirmed messages and queued nothing for {@link PROVE_AFTER}
 * milliseconds (looking every 250 ms, so within 1.25 s) sends one probe: afterwards an exit warns only about what is
 * really unconfirmed. A node that never stops sending never probes; a flush()
 * or stop() proves everything anyway.
 *
 * A quiet proof never holds the process (a background probe: unref'd timers,
 * no pending receive, no send that could wait for a dead relay's full queue),
 * and after one that got no answer the node probes again only once it has
 * sent something new: a dead relay costs one proof per quiet spell.
 *
 * @module
 */
import createDebug from 'debug'

const debug = createDebug('pyvent:client')

/** Milliseconds without anything queued after which a node proves what it sent. */
export const PROVE_AFTER = 1000

/** How often a node with unconfirmed messages looks whether it is still sending. */
const LOOK_EVERY = 250

/** How long one proof waits for its probe (it is tried again after the next quiet spell). */
const PROOF_TIMEOUT = 5000

/** What a quiet proof needs from its client. */
export interface QuietProofConfig {
  /** Messages queued so far. */
  queued(): number
  /** Messages a returned probe proved forwarded. */
  forwarded(): number
  /** Sends a probe behind everything queued: see Probes.probe. */
  probe(timeout: number): Promise<boolean>
  closed(): boolean
}

/** The quiet proofs of one client; see the module comment. */
export class QuietProof {
  readonly #config: QuietProofConfig
  #timer: NodeJS.Timeout | undefined
  /** `queued()` at the last look: unchanged at the next one means the node was quiet meanwhile. */
  #mark = 0
  /** Looks in a row that found the node quiet. */
  #quietLooks = 0
  #proving = false

  constructor(config: QuietProofConfig) {
    this.#config = config
  }

  /** Something was queued. Cheap: sets a timer only when none is set. */
  sent(): void {
    if (this.#timer !== undefined || this.#proving) return
    this.#quietLooks = 0
    this.#arm()
  }

  /** Stops: no more proofs. */
  close(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm(): void {
    this.#mark = this.#config.queued()
    // Never keeps the process alive: an exit that comes first warns, as it should.
    this.#timer = setTimeout(this.#tick, LOOK_EVERY).unref()
  }

  readonly #tick = (): void => {
    this.#timer = undefined
    const { queued, forwarded, probe, closed } = this.#config
    if (closed() || queued() <= forwarded()) return
    // Still sending, or not quiet for long enough yet: look again.
    this.#quietLooks = queued() === this.#mark ? this.#quietLooks + 1 : 0
    if (this.#quietLooks * LOOK_EVERY < PROVE_AFTER) return this.#arm()
    this.#quietLooks = 0
    this.#proving = true
    const at = queued()
    const count = at - forwarded()
    debug('quiet with %d message(s) unconfirmed: probing', count)
    void probe(PROOF_TIMEOUT)
      .catch(() => false)
      .then((arrived) => {
        this.#proving = false
        debug(arrived ? 'quiet proof: %d message(s) confirmed' : 'quiet proof: no answer (%d message(s) unconfirmed)', count)
        // A relay that did not answer is not asked again until the node sends something new.
        if (!closed() && queued() > forwarded() && (arrived || queued() > at)) this.#arm()
      })
  }
}
