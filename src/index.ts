/**
 * pyvent: a dead-simple event emitter across Node.js processes and worker
 * threads, on ZeroMQ, and beyond one machine on Redis or NATS.
 *
 * @packageDocumentation
 */
export { configure, connect, deadLetters, defaultNode, disconnect, emits, flush, isServer, ready, request, respond, send, startServer, stats, stop, unrespond, waitFor } from './api'
export { Node } from './node'
export type { MethodDecorator } from './decorators'
export type { Responder } from './requests'
export type { EmitOptions, EmitsDecorator, NodeEventMap, NodeStats, RequestOptions, SendOptions, WaitOptions } from './node-types'
export { PyventEvent, senderMatches } from './dispatcher'
export type { DurableOptions, Listener, ListenOptions } from './dispatcher'
export { Any, defineSignal } from './signal'
export type { AnySignal, Payload, PayloadValidator, Signal, SignalRef } from './signal'
export { DEFAULTS } from './options'
export type { DeliveryMode, NatsAuthOptions, NodeOptions } from './options'
export type { CurveOptions } from './security'
export type { RelayStats } from './zmq/relay-types'
export type { ClientStats, DeadLetter } from './engine'
export {
  AbortError,
  AlreadyStartedError,
  ConnectionLostError,
  InvalidArgumentError,
  InvalidPayloadError,
  ListenerError,
  MessageTooLargeError,
  MissingDependencyError,
  NoRespondersError,
  ProtocolError,
  PyventError,
  RelayUnreachableError,
  RemoteError,
  SendFailedError,
  StoppedError,
  TimeoutError,
  UnsupportedError
} from './errors'
export type { PyventErrorCode } from './errors'
export { PROTOCOL_VERSION } from './codec'
