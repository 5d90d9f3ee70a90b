// Gap counting (src/sequence.ts): only events that never arrived count as gaps.
import t from 'tap'
import { GapTracker } from '../dist/sequence.js'

t.test('a late event fills its gap instead of moving the count', async (t) => {
  const gaps = new GapTracker()
  gaps.record('s', 'n', 0, 1) // [0]
  gaps.record('s', 'n', 5, 2) // [5, 6]: 1-4 missing so far
  t.equal(gaps.gaps, 4)
  gaps.record('s', 'n', 3, 1) // [3] arrives late
  t.equal(gaps.gaps, 3, '1, 2 and 4 are still missing')
  gaps.record('s', 'n', 7, 10) // [7..16]
  t.equal(gaps.gaps, 3, 'in-order events add nothing')
  t.equal(gaps.duplicates, 0, 'a late event is not a duplicate')
})

t.test('repeats are duplicates; overlapping batches count only their repeated part', async (t) => {
  const gaps = new GapTracker()
  gaps.record('s', 'n', 0, 5)
  gaps.record('s', 'n', 2, 2)
  t.equal(gaps.duplicates, 2)
  gaps.record('s', 'n', 3, 4) // 3, 4 repeated; 5, 6 new
  t.equal(gaps.duplicates, 4)
  t.equal(gaps.gaps, 0)
  gaps.record('s', 'n', 10, 1) // 7-9 missing
  gaps.record('s', 'n', 6, 3) // 6 repeated, 7 and 8 late
  t.equal(gaps.gaps, 1, 'only 9 still missing')
  t.equal(gaps.duplicates, 5)
})

t.test('streams are per signal and sender node; forget() drops a signal', async (t) => {
  const gaps = new GapTracker()
  gaps.record('a', 'n1', 0, 1)
  gaps.record('a', 'n2', 7, 1)
  gaps.record('b', 'n1', 3, 1)
  t.equal(gaps.gaps, 0, 'the first event of a stream sets its start')
  gaps.forget('a')
  gaps.record('a', 'n1', 9, 1)
  t.equal(gaps.gaps, 0, 'a forgotten stream starts afresh')
})
