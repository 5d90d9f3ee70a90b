'use strict'
// Helpers used on both sides of the harness: the benchmark's event and the statistics.

/** The event every row sends: small, like {"i":123,"food":"sushi","drink":"sake"}; `i` numbers it per sender. */
function makeEvent(i) {
  return { i, food: 'sushi', drink: 'sake' }
}

function median(values) {
  return percentile([...values].sort((a, b) => a - b), 50)
}

/** Nearest-rank percentile of an already sorted array. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

/** p50 and p99 of round-trip samples in milliseconds, reported in microseconds. */
function latencySummary(samplesMs) {
  const sorted = [...samplesMs].sort((a, b) => a - b)
  return { p50: percentile(sorted, 50) * 1000, p99: percentile(sorted, 99) * 1000, count: sorted.length }
}

module.exports = { makeEvent, median, percentile, latencySummary }
