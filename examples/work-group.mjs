// Work groups: three workers in the group "resizers" share the jobs (each job is
// handled by exactly one of them, given to a worker with room: by default one
// unfinished job each), while a plain listener sees every job.
// Prints which worker took which job, then the totals, and exits.
import { Node } from 'pyvent'

const port = Number(process.env.PYVENT_PORT ?? 50020)
const jobs = 6
const relay = new Node({ port })
let handled = 0
let allHandled
const done = new Promise((resolve) => (allHandled = resolve))
const workers = ['north', 'south', 'east'].map((name) => {
  const node = new Node({ port, id: name })
  node.connect('resize', ({ file }) => {
    console.log(`${name} resizes ${file}`)
    if (++handled === jobs) allHandled()
  }, { group: 'resizers' })
  return node
})
let seen = 0
relay.connect('resize', () => {
  seen++
})
await relay.ready()
await Promise.all(workers.map((worker) => worker.ready()))

for (let i = 1; i <= jobs; i++) await relay.send('resize', { file: `photo-${i}.jpg` })
await done
await relay.stop() // flushes: the plain listener has seen every job by now
console.log(`the workers handled ${handled} jobs, the plain listener saw ${seen}`)
for (const worker of workers) await worker.stop()
