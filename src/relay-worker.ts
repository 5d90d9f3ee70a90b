/**
 * Entry point of the relay's worker thread (see relay.ts).
 * @internal
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads'
import { RelayConfig, runRelay } from './relay'

if (parentPort !== null) void runRelay(workerData as RelayConfig, parentPort)
