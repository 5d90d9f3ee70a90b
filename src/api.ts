/**
 * Module-level functions that proxy to a default node, one per thread
 * (each worker thread loads its own copy of this module, so each has its own).
 *
 * @module
 */
import type { Listener, ListenOptions, PyventEvent } from './dispatcher'
import { AlreadyStartedError } from './errors'
import { emitsDecorator, MethodDecorator, methodDecorator } from './decorators'
import type { Responder } from './requests'
import { Node } from './node'
import type { EmitOptions, EmitsDecorator, NodeStats, RequestOptions, SendOptions, WaitOptions } from './node-types'
import type { NodeOptions } from './options'
import type { DeadLetter } from './engine'
import type { AnySignal, Payload, Signal, SignalRef } from './signal'

let node: Node | undefined

/** The default node of this thread, created on first use (with the options given to {@link configure}, if any). */
export function defaultNode(): Node {
  node ??= new Node()
  return node
}

/**
 * Sets the options of the default node. Throws {@link AlreadyStartedError} once
 * the default node has started (call {@link stop} first to reconfigure).
 */
export function configure(newOptions: NodeOptions): void {
  if (node !== undefined && node.isStarted()) {
    throw new AlreadyStartedError(
      'configure() must be called before the default node starts (before the first connect, send, waitFor or ready); call stop() first to change its options.'
    )
  }
  node = new Node(newOptions)
}

/** {@inheritDoc Node.connect} */
export function connect<T = Payload>(signal: SignalRef<T> | AnySignal, callback: Listener<T>, options?: ListenOptions): Listener<T>
export function connect<T>(signal: Signal<T>, options?: ListenOptions): MethodDecorator<T>
export function connect(signal: string | AnySignal, options?: ListenOptions): MethodDecorator<never>
export function connect(signal: SignalRef | AnySignal, callbackOrOptions?: Listener<never> | ListenOptions, maybeOptions?: ListenOptions): unknown {
  if (typeof callbackOrOptions === 'function') return defaultNode().connect(signal, callbackOrOptions as Listener, maybeOptions)
  // As a decorator: each instance connects to the default node of the moment it
  // is created, so configure() may still come after the class is defined.
  const options = callbackOrOptions
  defaultNode().connect(signal as string, options) // validates now, connects nothing
  return methodDecorator((method) => defaultNode().connect(signal as SignalRef<never>, method as Listener<never>, options))
}

/** {@inheritDoc Node.respond} */
export function respond<T = Payload, R = unknown>(signal: SignalRef<T>, handler: Responder<T, R>): Responder<T, R>
export function respond<T>(signal: Signal<T>): MethodDecorator<T>
export function respond(signal: string): MethodDecorator<never>
export function respond(signal: SignalRef, handler?: Responder<never>): unknown {
  if (handler !== undefined) return defaultNode().respond(signal as SignalRef<never>, handler)
  defaultNode().respond(signal as string) // validates now, registers nothing
  return methodDecorator((method) => defaultNode().respond(signal as SignalRef<never>, method as Responder<never>))
}

/** {@inheritDoc Node.unrespond} */
export function unrespond(signal: SignalRef, handler?: Responder<never>): number {
  return defaultNode().unrespond(signal, handler)
}

/** {@inheritDoc Node.emits} */
export function emits<T = unknown>(signal: SignalRef<T>, options?: EmitOptions): EmitsDecorator<T> {
  defaultNode().emits(signal, options) // validates now; each call emits through the default node of its moment
  return emitsDecorator((self, value) => defaultNode().emitFrom(self, signal, value, options))
}

/** {@inheritDoc Node.disconnect} */
export function disconnect(signal: SignalRef | AnySignal, callback?: Listener<never>, options?: ListenOptions): number {
  return defaultNode().disconnect(signal, callback, options)
}

/** {@inheritDoc Node.send} */
export function send<T = unknown>(signal: SignalRef<T>, payload?: NoInfer<T>, options?: SendOptions): Promise<void> {
  return defaultNode().send(signal, payload, options)
}

/** {@inheritDoc Node.waitFor} */
export function waitFor<T = Payload>(signal: SignalRef<T> | AnySignal, options?: WaitOptions): Promise<PyventEvent<T>> {
  return defaultNode().waitFor(signal, options)
}

/** {@inheritDoc Node.request} */
export function request<R = unknown, T = unknown>(signal: SignalRef<T>, payload?: NoInfer<T>, options?: RequestOptions): Promise<R> {
  return defaultNode().request<R, T>(signal, payload, options)
}

/** {@inheritDoc Node.ready} */
export function ready(): Promise<void> {
  return defaultNode().ready()
}

/** {@inheritDoc Node.isServer} */
export function isServer(): boolean {
  return node?.isServer() ?? false
}

/** {@inheritDoc Node.startServer} */
export function startServer(): Promise<boolean> {
  return defaultNode().startServer()
}

/** {@inheritDoc Node.deadLetters} */
export function deadLetters(signal: SignalRef, group: string, options?: { count?: number }): Promise<DeadLetter[]> {
  return defaultNode().deadLetters(signal, group, options)
}

/** {@inheritDoc Node.stats} */
export function stats(): Promise<NodeStats> {
  return defaultNode().stats()
}

/** {@inheritDoc Node.flush} */
export function flush(): Promise<void> {
  return node?.flush() ?? Promise.resolve()
}

/** {@inheritDoc Node.stop} */
export function stop(): Promise<boolean> {
  return node?.stop() ?? Promise.resolve(true)
}
