// Every js, mjs, ts and sh block of README.md runs here, the way the README
// tells a reader to run it, so the documentation cannot drift from the code.
//
// An HTML comment right before a block (only blank lines between) says how:
//
//   <!-- readme-test: file NAME -->
//       saved as NAME in the work directory and run by a later block of its
//       section (`node NAME`); the test checks that one mentions it.
//   <!-- readme-test: background; ready "TEXT"; copies N -->
//       started in the background, N copies (default 1), and left running until
//       the end of its section (the next "## " heading), while the blocks after
//       it run. The next block starts once every copy has printed a line
//       containing TEXT, on stdout or stderr. At the end of the section the test
//       waits for what the block prints (below), then ends it with SIGINT.
//   <!-- readme-test: prints "LINE" /REGEX/ ...; exit CODE -->
//       everything the block prints on stdout (all copies together), in any
//       order: each entry matches exactly one line, and no line is left over.
//       The exit code defaults to 0; a background block ended by the test may
//       also die of that SIGINT.
//   <!-- readme-test: skip REASON -->
//       not run; REASON shows in the test output. Only for what cannot run here
//       (another host, the npm registry, the suite itself), and only a few.
//
// Keys combine with ";". A block without a comment runs in the foreground and
// must exit with 0.
//
// How blocks run: in a fresh directory under test/fixtures/readme/ (removed in
// teardown), where `import ... from 'pyvent'` resolves to this checkout's dist/
// (a package may import itself by name through its "exports"). js and mjs
// blocks are .mjs files run with node; ts blocks are compiled together, first,
// by the project's TypeScript (standard decorators) as .mts files, then run;
// sh blocks run with bash and `set -e`, where `npx pyvent` runs dist/cli.js
// (what npx runs once pyvent is installed). Every section gets a port of this
// file's block as PYVENT_PORT (and as REDIS_PORT, for a section that starts a
// redis-server of its own; a section that starts nats-server gets a pair more
// as NATS_PORT, its client and cluster ports), and must free it (its relay
// gone) when it ends. A section whose blocks run redis-server or nats-server is
// skipped where that is not installed (failed where CI is set).
// NODE_OPTIONS (tap's loaders), PYVENT_HOST and PYVENT_CURVE_KEYS are removed,
// so blocks run as they would for a reader.
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { Test } from 'tap'
import { canBind, deadline, portBlock, until } from './helpers'
import { inCI } from './requires'

const ROOT = join(__dirname, '..')
const README = join(ROOT, 'README.md')
const CLI = join(ROOT, 'dist', 'cli.js')
const TSC = require.resolve('typescript/bin/tsc')
const ports = portBlock(__filename)

/** Fence languages that run, and those that are only shown (output samples). */
const RUNNABLE = new Set(['js', 'mjs', 'ts', 'sh'])
const SHOWN = new Set(['text', 'json'])
/** Skips allowed before this test asks whether the README has become untestable. */
const MAX_SKIPS = 6
const RUN_MS = 30_000
/** In sh blocks: `npx pyvent ...` runs this checkout's CLI; any other npx command is npx's. */
const NPX_PYVENT = 'npx() { if [ "$1" = pyvent ]; then shift; node "$PYVENT_README_CLI" "$@"; else command npx "$@"; fi; }'
const READY_MS = 20_000

type Expected = string | RegExp

interface Directive {
  file?: string
  skip?: string
  background: boolean
  ready?: string
  copies: number
  prints?: Expected[]
  exit: number
}

interface Block {
  /** 1-based line of the opening fence. */
  line: number
  lang: string
  code: string
  section: string
  directive: Directive
}

/** Parses the text of a readme-test comment (see the top of this file). */
function parseDirective(text: string): Directive {
  const directive: Directive = { background: false, copies: 1, exit: 0 }
  let i = 0
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i] as string)) i++
  }
  /** The end of a "..." or /.../ token that starts at `from`. */
  const closing = (from: number, quote: string): number => {
    let j = from + 1
    while (j < text.length && text[j] !== quote) j += text[j] === '\\' ? 2 : 1
    if (j >= text.length) throw new Error(`unterminated ${quote} in "${text}"`)
    return j
  }
  for (;;) {
    skipSpace()
    if (i >= text.length) return directive
    const key = /^\w+/.exec(text.slice(i))?.[0]
    if (key === undefined) throw new Error(`expected a key at "${text.slice(i)}"`)
    i += key.length
    if (key === 'skip') {
      // The reason is free text, to the end.
      directive.skip = text.slice(i).trim()
      if (directive.skip === '') throw new Error('skip needs a reason')
      return directive
    }
    const values: Expected[] = []
    for (;;) {
      skipSpace()
      if (i >= text.length) break
      const c = text[i]
      if (c === ';') {
        i++
        break
      }
      if (c === '"') {
        const j = closing(i, '"')
        values.push(JSON.parse(text.slice(i, j + 1)) as string)
        i = j + 1
      } else if (c === '/') {
        const j = closing(i, '/')
        values.push(new RegExp(text.slice(i + 1, j)))
        i = j + 1
      } else {
        let j = i
        while (j < text.length && !/[\s;]/.test(text[j] as string)) j++
        values.push(text.slice(i, j))
        i = j
      }
    }
    const one = (): string => {
      if (values.length !== 1 || typeof values[0] !== 'string') throw new Error(`${key} takes one value`)
      return values[0]
    }
    switch (key) {
      case 'file':
        directive.file = one()
        break
      case 'background':
        if (values.length > 0) throw new Error('background takes no value')
        directive.background = true
        break
      case 'ready':
        directive.ready = one()
        break
      case 'copies':
        directive.copies = Number(one())
        if (!Number.isInteger(directive.copies) || directive.copies < 1) throw new Error('copies takes a positive integer')
        break
      case 'prints':
        directive.prints = values
        break
      case 'exit':
        directive.exit = Number(one())
        break
      default:
        throw new Error(`unknown key "${key}"`)
    }
  }
}

/** Every fenced block of the README with its section and directive, and what is wrong with the README's markup. */
function parseReadme(text: string): { blocks: Block[]; problems: string[] } {
  const lines = text.split('\n')
  const blocks: Block[] = []
  const problems: string[] = []
  let section = '(before the first section)'
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (line.startsWith('## ')) section = line.slice(3).trim()
    const open = /^(\s*)```(.*)$/.exec(line)
    if (open === null) continue
    const [, indent = '', info = ''] = open
    const lang = info.trim()
    let end = i + 1
    while (end < lines.length && (lines[end] as string).trim() !== '```') end++
    const where = `README.md:${i + 1}`
    if (end >= lines.length) {
      problems.push(`${where}: the block never closes`)
      break
    }
    const code = lines
      .slice(i + 1, end)
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      .join('\n')
    let before = i - 1
    while (before >= 0 && (lines[before] as string).trim() === '') before--
    const comment = /^\s*<!--\s*readme-test:([\s\S]*?)-->\s*$/.exec(lines[before] ?? '')
    if (!RUNNABLE.has(lang)) {
      if (!SHOWN.has(lang)) problems.push(`${where}: a block tagged "${lang}" is neither run nor known as output: tag it (${[...RUNNABLE, ...SHOWN].join(', ')})`)
      else if (comment !== null) problems.push(`${where}: a readme-test comment before a "${lang}" block, which never runs`)
      i = end
      continue
    }
    let directive: Directive = { background: false, copies: 1, exit: 0 }
    if (comment !== null) {
      try {
        directive = parseDirective(comment[1] as string)
      } catch (error) {
        problems.push(`${where}: readme-test comment: ${(error as Error).message}`)
      }
    }
    blocks.push({ line: i + 1, lang, code: code + '\n', section, directive })
    i = end
  }
  return { blocks, problems }
}

const { blocks, problems } = parseReadme(readFileSync(README, 'utf8'))
const skipped = blocks.filter((block) => block.directive.skip !== undefined)
const label = (block: Block): string => `README.md:${block.line} (${block.lang})`

t.test('every block of README.md is runnable or says why not', async (t) => {
  t.same(problems, [], 'the README has no untagged, unknown or mis-marked block')
  t.ok(blocks.length >= 15, `found the README's runnable blocks (${blocks.length})`)
  t.ok(skipped.length <= MAX_SKIPS, `at most ${MAX_SKIPS} blocks are skipped (${skipped.length}): keep the README runnable`)
  for (const block of blocks) {
    const { file } = block.directive
    if (file === undefined) continue
    const user = blocks.find((other) => other.section === block.section && other.line > block.line && other.code.includes(file))
    t.ok(user, `${label(block)} is saved as ${file} and run by a later block of "${block.section}"`)
  }
})

// Fresh for every run, inside the repository so that `pyvent` resolves to it.
const work = mkdtempSync(join(__dirname, 'fixtures', 'readme', 'run-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

/** The file a block is saved as, in `work`. */
function fileOf(block: Block): string {
  if (block.directive.file !== undefined) return block.directive.file
  const extension = block.lang === 'ts' ? 'mts' : block.lang === 'sh' ? 'sh' : 'mjs'
  return `block-${block.line}.${extension}`
}

for (const block of blocks) {
  if (block.directive.skip !== undefined) continue
  const body = block.lang === 'sh' ? `set -e\n${NPX_PYVENT}\n${block.code}` : block.code
  writeFileSync(join(work, fileOf(block)), body)
}

/** The environment of every block: a reader's, with this section's port. */
function environment(port: number, natsPort: number | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PYVENT_PORT: String(port),
    REDIS_PORT: String(port),
    ...(natsPort === undefined ? {} : { NATS_PORT: String(natsPort) }),
    PYVENT_README_CLI: CLI,
    // The node that runs this test, first: sh blocks call `node`. Debian puts nats-server in /usr/sbin.
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}${delimiter}/usr/sbin`
  }
  delete env.NODE_OPTIONS
  delete env.PYVENT_HOST
  delete env.PYVENT_CURVE_KEYS
  return env
}

/** A running block: its output line by line, and its end. */
interface Run {
  name: string
  child: ChildProcess
  stdout: string[]
  stderr: string[]
  /** Whether the test ended it (SIGINT at the end of its section). */
  stopped: boolean
  /** Resolves once a line satisfying `match` has appeared on either stream. */
  line(match: (line: string) => boolean, ms: number, what: string): Promise<void>
  /** Whether the block has ended (and all its output has been read). */
  ended(): boolean
  /** Calls `callback` on every new line and at the end; returns what stops that. */
  watch(callback: () => void): () => void
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Sends `signal` to the block's process group (a shell and what it started). */
  kill(signal: NodeJS.Signals): void
}

/** Starts a block in a process group of its own, ended (SIGKILL to the group) in teardown if still running. */
function start(t: Test, name: string, file: string, lang: string, env: NodeJS.ProcessEnv): Run {
  const command = lang === 'sh' ? 'bash' : process.execPath
  const child = spawn(command, [file], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const stdout: string[] = []
  const stderr: string[] = []
  const wakers = new Set<() => void>()
  const wake = (): void => {
    for (const waker of wakers) waker()
  }
  createInterface({ input: child.stdout! }).on('line', (line) => (stdout.push(line), wake()))
  createInterface({ input: child.stderr! }).on('line', (line) => (stderr.push(line), wake()))
  // 'close': both streams have ended, so every line has been read.
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  let ended = false
  void exited.then(() => {
    ended = true
    wake()
  })
  const kill = (signal: NodeJS.Signals): void => {
    if (ended || child.pid === undefined) return
    try {
      process.kill(-child.pid, signal)
    } catch {
      // The group has already gone.
    }
  }
  t.teardown(async () => {
    kill('SIGKILL')
    await exited
  })
  const waitUntil = (done: () => boolean, ms: number, what: string): Promise<void> =>
    deadline(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (!done()) return
          wakers.delete(check)
          resolve()
        }
        wakers.add(check)
        check()
      }),
      ms,
      what
    )
  const run: Run = {
    name,
    child,
    stdout,
    stderr,
    stopped: false,
    exited,
    kill,
    line: (match, ms, what) =>
      waitUntil(
        () => {
          if (stdout.some(match) || stderr.some(match)) return true
          if (ended) throw new Error(`${name} ended before ${what} (stdout: ${stdout.join(' | ')}; stderr: ${stderr.join(' | ')})`)
          return false
        },
        ms,
        `${what} from ${name}`
      ),
    ended: () => ended,
    watch(callback) {
      wakers.add(callback)
      return () => wakers.delete(callback)
    }
  }
  return run
}

/** Checks that `lines` are exactly `expected`, in any order: each entry matches one line, none left over. */
function checkPrints(t: Test, what: string, lines: string[], expected: Expected[]): void {
  const left = [...lines]
  const missing: string[] = []
  // Literal lines first, so that a pattern does not take the line a literal needs.
  const ordered = [...expected].sort((a, b) => Number(a instanceof RegExp) - Number(b instanceof RegExp))
  for (const entry of ordered) {
    const index = left.findIndex((line) => (typeof entry === 'string' ? line === entry : entry.test(line)))
    if (index < 0) missing.push(String(entry))
    else left.splice(index, 1)
  }
  t.same({ missing, unexpected: left }, { missing: [], unexpected: [] }, `${what} prints what the README says`, { stdout: lines })
}

/** Exit code 0 for a block that ended by itself as expected, or a block the test stopped that ended on that SIGINT. */
function checkExit(t: Test, run: Run, result: { code: number | null; signal: NodeJS.Signals | null }, expected: number): void {
  const extra = { stdout: run.stdout, stderr: run.stderr }
  if (run.stopped && (result.signal === 'SIGINT' || result.code === 130 || result.code === 0)) {
    t.pass(`${run.name} ended on the test's SIGINT`)
    return
  }
  t.same(result, { code: expected, signal: null }, `${run.name} exits with ${expected}`, extra)
}

/** Compiles every ts block at once; resolves with tsc's complaint, or undefined. */
async function compileTypeScript(): Promise<string | undefined> {
  const files = blocks.filter((block) => block.lang === 'ts' && block.directive.skip === undefined).map(fileOf)
  if (files.length === 0) return undefined
  const config = {
    extends: join(ROOT, 'tsconfig.json'),
    compilerOptions: { rootDir: '.', outDir: '.', declaration: false, sourceMap: false, noEmit: false },
    files,
    // The project's own include (src/) would come along with extends.
    include: []
  }
  writeFileSync(join(work, 'tsconfig.json'), JSON.stringify(config, null, 2))
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, '-p', join(work, 'tsconfig.json')], { cwd: work }, (error, stdout, stderr) => {
      resolve(error === null ? undefined : `${stdout}${stderr}`.trim() || error.message)
    })
  })
}

let tsProblem: string | undefined
t.test('the ts blocks compile with the project\'s TypeScript', async (t) => {
  tsProblem = await compileTypeScript()
  t.equal(tsProblem, undefined, 'tsc reports nothing')
})

/** Runs one section's blocks in order, with its background blocks up until the end. */
async function runSection(t: Test, section: string, list: Block[]): Promise<void> {
  const port = ports.next()
  const natsPort = list.some((block) => /\bnats-server\b/.test(block.code)) ? ports.next() : undefined
  const env = environment(port, natsPort)
  const background: { block: Block; runs: Run[] }[] = []
  try {
    for (const block of list) {
      const { directive } = block
      const name = label(block)
      if (directive.skip !== undefined) {
        t.test(name, { skip: directive.skip }, async () => undefined)
        continue
      }
      if (directive.file !== undefined) continue
      if (block.lang === 'ts' && tsProblem !== undefined) {
        t.fail(`${name} did not compile`, { tsc: tsProblem })
        continue
      }
      const file = block.lang === 'ts' ? fileOf(block).replace(/\.mts$/, '.mjs') : fileOf(block)
      if (directive.background) {
        const runs = Array.from({ length: directive.copies }, (_, i) =>
          start(t, directive.copies > 1 ? `${name} copy ${i + 1}` : name, file, block.lang, env)
        )
        background.push({ block, runs })
        const ready = directive.ready
        if (ready !== undefined) {
          for (const run of runs) {
            await run.line((line) => line.includes(ready), READY_MS, `"${ready}"`).then(
              () => t.pass(`${run.name} is ready`),
              (error: Error) => t.fail(error.message)
            )
          }
        }
        continue
      }
      const run = start(t, name, file, block.lang, env)
      const result = await deadline(run.exited, RUN_MS, `exit of ${name}`).catch((error: Error) => {
        t.fail(error.message, { stdout: run.stdout, stderr: run.stderr })
        return undefined
      })
      if (result === undefined) continue
      checkExit(t, run, result, directive.exit)
      if (directive.prints !== undefined) checkPrints(t, name, run.stdout, directive.prints)
    }
  } finally {
    // The end of the section: what the background blocks should print (all of them
    // first: one may need another, a listener its Redis), then their end.
    for (const { block, runs } of background) {
      const expected = block.directive.prints
      if (expected !== undefined) {
        // The lines may come from any copy: wait until they are all in, or every copy has ended.
        const total = (): number => runs.reduce((sum, run) => sum + run.stdout.length, 0)
        const enough = new Promise<void>((resolve) => {
          const stops: (() => void)[] = []
          const check = (): void => {
            if (total() < expected.length && !runs.every((run) => run.ended())) return
            for (const stop of stops) stop()
            resolve()
          }
          for (const run of runs) stops.push(run.watch(check))
          check()
        })
        await deadline(enough, RUN_MS, `${expected.length} lines on stdout of ${label(block)}`).catch((error: Error) =>
          t.fail(error.message, { stdout: runs.flatMap((run) => run.stdout), stderr: runs.flatMap((run) => run.stderr) })
        )
      }
    }
    for (const { block, runs } of background) {
      const expected = block.directive.prints
      for (const run of runs) {
        if (!run.ended()) {
          run.stopped = true
          run.kill('SIGINT')
        }
      }
      for (const run of runs) {
        const result = await deadline(run.exited, RUN_MS, `exit of ${run.name}`).catch((error: Error) => {
          t.fail(error.message)
          return undefined
        })
        if (result !== undefined) checkExit(t, run, result, block.directive.exit)
      }
      if (expected !== undefined) checkPrints(t, label(block), runs.flatMap((run) => run.stdout), expected)
    }
  }
  // Every node of the section has ended, so its relay process must have too.
  await until(async () => (await canBind(port)) && (await canBind(port + 1)), 10_000, `release of port ${port} after "${section}"`).then(
    () => t.pass(`the section's relay has gone (port ${port} is free)`),
    (error: Error) => t.fail(error.message)
  )
}

/** The servers a section may start, and whether this machine has each. */
const SERVERS = [
  { name: 'redis-server', has: spawnSync('redis-server', ['--version']).error === undefined },
  { name: 'nats-server', has: ['nats-server', '/usr/sbin/nats-server'].some((bin) => spawnSync(bin, ['--version']).error === undefined) }
]
const sections = new Map<string, Block[]>()
for (const block of blocks) sections.set(block.section, [...(sections.get(block.section) ?? []), block])
for (const [section, list] of sections) {
  if (list.every((block) => block.directive.skip !== undefined)) {
    for (const block of list) t.test(`${section}: ${label(block)}`, { skip: block.directive.skip }, async () => undefined)
    continue
  }
  const missing = SERVERS.find(({ name, has }) => !has && list.some((block) => block.directive.skip === undefined && new RegExp(`\\b${name}\\b`).test(block.code)))
  if (missing !== undefined) {
    const reason = `needs ${missing.name} (Debian package ${missing.name})`
    if (inCI()) t.fail(`${section}: ${reason}, and CI is set`)
    else t.test(section, { skip: reason }, async () => undefined)
    continue
  }
  t.test(section, (t) => runSection(t, section, list))
}
