// Tests that need something outside npm (a system package, root): skipped with
// the reason on a machine without it, so `npm test` passes on a fresh clone, and
// failed where CI is set, because CI installs it (.ci/run) and a skip there would
// hide a broken setup.
import type { Test } from 'tap'

/** What a test file needs from the system, and how to tell whether this machine has it. */
export interface SystemRequirement {
  /** What needs it, for messages: "the Python interop test". */
  what: string
  /** What to install or grant, for a person to act on: "Debian package python3-zmq". */
  needs: string
  /** Why this machine lacks it (one line), or `undefined` when it has it. Other failures should throw. */
  check(): string | undefined
}

/** Whether `CI` is set to something truthy: not unset, '', '0' or 'false'. */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI !== undefined && !/^(|0|false)$/i.test(env.CI.trim())
}

/**
 * Returns true when this machine meets `requirement`. Otherwise returns false
 * after skipping `t` with a one-line reason (`t.plan(0, reason)`: a real skip,
 * so call it before `t` has any tests), or, where CI is set, after failing it.
 *
 * @example
 * ```ts
 * if (requireSystem(t, { what: 'the interop test', needs: 'Debian package python3-zmq', check })) {
 *   t.test('...', async (t) => { ... })
 * }
 * ```
 */
export function requireSystem(t: Test, requirement: SystemRequirement, env: NodeJS.ProcessEnv = process.env): boolean {
  const { what, needs, check } = requirement
  const missing = check()
  if (missing === undefined) return true
  // Where CI is set a skip would hide a broken setup: CI must run every test.
  if (inCI(env)) t.fail(`${what} needs ${needs}, and ${missing}. CI=${env.CI ?? ''}, so this fails instead of skipping.`)
  else t.plan(0, `skipped: ${what} needs ${needs} (${missing})`)
  return false
}
