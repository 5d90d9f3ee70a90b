/**
 * A promise raced against a deadline, its timer cleared either way.
 *
 * @module
 */

/** `promise`'s value, or `late` if it takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(late), Math.max(0, ms))))
  try {
    return await Promise.race([promise, expired])
  } finally {
    clearTimeout(timer)
  }
}
