/**
 * Subjects of pyvent on NATS: how signal, sender and group names, which may
 * hold any character but NUL, become subject tokens, and back. NATS splits
 * subjects at `.`, gives `*` and `>` wildcard meaning and forbids whitespace,
 * so every name is escaped into tokens that contain none of them.
 *
 * Layout (docs/PROTOCOL.md, section "NATS"):
 * - `pyvent.e.<signal>.<sender segment>...`: an event batch (one token per
 *   dot-separated segment of the sender name, so a prefix of senders is a
 *   subject prefix too);
 * - `pyvent.q.<signal>.<sender segment>...`: a request;
 * - `pyvent.r.<node>.<request id>`: replies to a node's requests;
 * - `pyvent.d.<signal>.<group>`: a durable group's dead letters.
 *
 * @module
 */

/** The first token of every pyvent subject. */
export const ROOT = 'pyvent'

/**
 * Escapes a name into one subject token: printable ASCII stays as it is, except
 * `.`, `*`, `>` and `%`; those, whitespace, control characters and every byte
 * of a non-ASCII character become `%XX` (the UTF-8 byte in upper-case hex). An
 * empty name (an empty sender segment, as in `a..b`) is `%00`: names never
 * contain NUL, so that token means nothing else.
 */
export function escapeToken(name: string): string {
  if (name === '') return '%00'
  if (SAFE.test(name)) return name
  let token = ''
  for (const byte of Buffer.from(name, 'utf8')) {
    token += byte > 0x20 && byte < 0x7f && byte !== 0x2e && byte !== 0x2a && byte !== 0x3e && byte !== 0x25 ? String.fromCharCode(byte) : '%' + HEX[byte]
  }
  return token
}

/** Names that need no escaping (the common case, checked without allocating). */
const SAFE = /^[!-$&-)+-\-/-=?-~]+$/
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).toUpperCase().padStart(2, '0'))

/**
 * The name a token stands for, or `undefined` when the token is not exactly
 * what {@link escapeToken} writes for some name (a bad escape, a byte left
 * unescaped or escaped needlessly, invalid UTF-8): such a subject is
 * malformed, so every name has one subject spelling.
 */
export function unescapeToken(token: string): string | undefined {
  if (token === '%00') return ''
  if (!token.includes('%')) return SAFE.test(token) ? token : undefined
  const bytes: number[] = []
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i)
    if (code === 0x25) {
      const hex = token.slice(i + 1, i + 3)
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined
      bytes.push(parseInt(hex, 16))
      i += 2
    } else if (code > 0x20 && code < 0x7f) bytes.push(code)
    else return undefined
  }
  const name = Buffer.from(bytes).toString('utf8')
  // Canonical only: a broken UTF-8 sequence (read as U+FFFD), a NUL or a needless escape spells differently.
  return name !== '' && !name.includes('\0') && escapeToken(name) === token ? name : undefined
}

/** A sender name as subject tokens: one per dot-separated segment. */
export function senderTokens(sender: string): string {
  return sender.split('.').map(escapeToken).join('.')
}

/** Subject cache: a sender sends the same few (signal, sender) pairs again and again. */
const cache = new Map<string, string>()
const CACHE_LIMIT = 1024

/** The subject of an event batch (`e`) or request (`q`) on `signal` from `sender`. */
export function eventSubject(kind: 'e' | 'q', signal: string, sender: string): string {
  const key = kind + signal + '\0' + sender
  let subject = cache.get(key)
  if (subject === undefined) {
    subject = `${ROOT}.${kind}.${escapeToken(signal)}.${senderTokens(sender)}`
    // A program that invents names without end must not grow this cache without end.
    if (cache.size >= CACHE_LIMIT) cache.clear()
    cache.set(key, subject)
  }
  return subject
}

/** What to subscribe to for every event (`e`) or request (`q`) of `signal`; `''`: every signal. */
export function signalFilter(kind: 'e' | 'q', signal: string): string {
  return signal === '' ? `${ROOT}.${kind}.*.>` : `${ROOT}.${kind}.${escapeToken(signal)}.>`
}

/** Signal and sender of an event or request subject, or `undefined` if the subject is not a valid one. */
export function parseEventSubject(subject: string): { kind: 'e' | 'q'; signal: string; sender: string } | undefined {
  const tokens = subject.split('.')
  if (tokens.length < 4 || tokens[0] !== ROOT || (tokens[1] !== 'e' && tokens[1] !== 'q')) return undefined
  const signal = unescapeToken(tokens[2] as string)
  if (signal === undefined || signal === '' || signal.startsWith('$')) return undefined
  const segments: string[] = []
  for (let i = 3; i < tokens.length; i++) {
    const segment = unescapeToken(tokens[i] as string)
    if (segment === undefined) return undefined
    segments.push(segment)
  }
  const sender = segments.join('.')
  if (sender === '') return undefined
  return { kind: tokens[1], signal, sender }
}

/** The subject under which `node` receives its replies (the request id follows as the last token). */
export function replyPrefix(node: string): string {
  return `${ROOT}.r.${escapeToken(node)}`
}

/** The reply subject of request `id` of `node`. */
export function replySubject(node: string, id: string): string {
  return `${replyPrefix(node)}.${escapeToken(id)}`
}

/** The request id of a reply subject under `prefix`, or `undefined`. */
export function parseReplySubject(prefix: string, subject: string): string | undefined {
  if (!subject.startsWith(prefix + '.')) return undefined
  const token = subject.slice(prefix.length + 1)
  return token.includes('.') ? undefined : unescapeToken(token)
}

/** The subject of a durable group's dead letters. */
export function deadLetterSubject(signal: string, group: string): string {
  return `${ROOT}.d.${escapeToken(signal)}.${escapeToken(group)}`
}
