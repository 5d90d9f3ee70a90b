/**
 * A promise raced against a deadline, its timer cleared either way.
 *
 * @module
 */

/** `promise`'s value, or `false` if it takes longer than `ms`. */
export async function within(promise: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))))
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}
