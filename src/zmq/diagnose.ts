/**
 * Why no relay answered: looks at the address a node was given (does the host
 * resolve, is it this machine's, does anything listen on the ports) and says
 * what is wrong and what to do, in one sentence.
 *
 * @module
 */
import { Socket } from 'node:net'
import { lookupFailure } from '../host-lookup'
import { ResolvedOptions } from '../options'
import { bindProblem } from './relay-host'

/** How long a look at one port may take. */
const PROBE_TIMEOUT = 500

/** Resolves with the error code of a TCP connection to `host:port`, or `undefined` if something accepted it. */
function connectProblem(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = new Socket()
    socket.unref()
    const done = (problem: string | undefined): void => {
      socket.destroy()
      resolve(problem)
    }
    socket.setTimeout(PROBE_TIMEOUT, () => done('ETIMEDOUT'))
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message))
    socket.connect({ host, port }, () => done(undefined))
  })
}

/** The sentence that follows "No pyvent relay answered at host:port within n ms." */
export async function diagnose(options: ResolvedOptions): Promise<string> {
  const { host, port, server, curve } = options
  const portHelp = 'choose other ports with the port option or PYVENT_PORT'
  const unresolved = await lookupFailure(host)
  if (unresolved !== undefined) return `The host name "${host}" does not resolve (${unresolved}): check the host option or PYVENT_HOST.`
  const [pub, pull] = await Promise.all([connectProblem(host, port), connectProblem(host, port + 1)])
  if (pub === undefined && pull === undefined) {
    return curve !== undefined
      ? `Something listens on ports ${port} and ${port + 1} but did not accept this node: check that this node's serverPublicKey is the relay's and that the relay allows its publicKey.`
      : `Something listens on ports ${port} and ${port + 1} but does not answer as a pyvent relay: another program, or a relay that requires CURVE keys; ${portHelp}, or give this node the relay's keys.`
  }
  if (pub === undefined || pull === undefined) {
    const held = pub === undefined ? port : port + 1
    return `Port ${held} is held by a program that is not a pyvent relay (port ${held === port ? port + 1 : port} is not listening); ${portHelp}.`
  }
  if (!server) {
    return `No relay runs there, and this node may not host one (server: false): start a node with server: true, or run \`pyvent serve\`, on that port.`
  }
  const bind = await bindProblem(host, port)
  if (bind === 'EADDRNOTAVAIL') {
    return `No relay runs there, and ${host} is not an address of this machine, so this node cannot host one: run the relay on that host (\`pyvent serve --host ${host}\`), or use a local address.`
  }
  if (curve !== undefined && curve.serverSecretKey === undefined) {
    return `No relay runs there, and this node cannot host one: with CURVE, only a node given the relay's serverSecretKey may serve.`
  }
  return `No relay runs there, and this node could not start one (${bind ?? 'the relay process did not answer'}).`
}
