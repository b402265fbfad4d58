'use strict';
/*
 * Tandem kernel driver for Node.js (core modules only; Node 18 and 20).
 *
 * Protocol (the same for the python3, bash and node drivers):
 *   requests  stdin, one JSON object per line:
 *               {"op":"execute","id":7,"code":"let x = 1; x + 1"}
 *               {"op":"complete","id":8,"code":"Math.fl","cursor":7}   cursor counts code points
 *               {"op":"chdir","id":9,"path":"/workspace"}
 *             EOF on stdin -> exit 0.  Blank lines are ignored.  Bad JSON, a non-object,
 *             an unknown op or missing fields -> done/error "ProtocolError", carry on.
 *   events    fd 3, one JSON object per line, each line sent with one write():
 *               {"ev":"ready","language":"javascript","version":"20.1.0","pid":123}
 *               {"ev":"done","id":7,"status":"ok"|"error"|"interrupted",
 *                "result":"<util.inspect of the completion value, or null>",
 *                "error":null|{"name":"TypeError","message":"..."}}
 *               {"ev":"done","id":8,"status":"ok","matches":[..],"cursor_start":5}
 *   output    console.* and process.stdout/stderr write synchronously (fs.writeSync) to
 *             fd 1 / fd 2, so a cell's output is in the pipes before its "done";
 *             err.stack (driver frames removed) goes to stderr on error.
 *   SIGINT    vm breakOnSigint stops a running cell (even `while (true) {}`): status
 *             "interrupted", context kept.  Ignored while idle.  A worker thread keeps
 *             Node's SIGINT watchdog armed between cells (see "SIGINT handling").
 *             A cell blocked inside a synchronous child process (execSync, spawnSync)
 *             only stops once that child exits: SIGINT goes to the driver alone.
 *
 * Cells run with vm.runInContext in one persistent context that also sees Node's
 * globals plus `require` (resolving from the cwd).  Top-level `let`/`const` persist
 * (re-declaring one in a later cell is a SyntaxError, as in the Node REPL).
 * Top-level `await`: a cell that only compiles as an async function body is run as
 * `(async () => { cell })()` and awaited: its result is its `return` value (null if
 * none) and its declarations are local to it (assign to globalThis to keep them).
 * SIGINT during such an await reports "interrupted" but cannot stop the async work.
 * Uncaught errors from timers/promises are printed to stderr; the kernel keeps going.
 */
const fs = require('fs');
const path = require('path');
const util = require('util');
const vm = require('vm');
const { Console } = require('console');
const { Worker } = require('worker_threads');
const { Writable } = require('stream');
const { createRequire } = require('module');

const RESULT_LIMIT = 64 * 1024;
const pause = new Int32Array(new SharedArrayBuffer(4));

// If fd 3 is a pipe, events go to a close-on-exec reopened copy of it (Node opens
// files O_CLOEXEC), so child processes started by cells do not inherit the event
// pipe; otherwise (or if /proc is missing) fd 3 itself is used.
let EVENTS = 3;
try {
  if (fs.fstatSync(3).isFIFO()) {
    EVENTS = fs.openSync('/proc/self/fd/3', fs.constants.O_WRONLY);
    fs.closeSync(3);
  }
} catch (e) {
  EVENTS = 3;
}

function writeAll(fd, data) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(String(data), 'utf8');
  for (let off = 0; off < buf.length;) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1);      // non-blocking pipe is full: wait 1 ms
    }
  }
}

// Synchronous replacements for process.stdout / process.stderr.
class SyncWriter extends Writable {
  constructor(fd) { super(); this.fd = fd; this.isTTY = false; }
  _write(chunk, encoding, callback) {
    try { writeAll(this.fd, chunk); callback(); } catch (e) { callback(e); }
  }
}
const stdout = new SyncWriter(1);
const stderr = new SyncWriter(2);
for (const [name, stream] of [['stdout', stdout], ['stderr', stderr]]) {
  Object.defineProperty(process, name, { value: stream, configurable: true, enumerable: true });
}

function emit(obj) {
  try {
    writeAll(EVENTS, JSON.stringify(obj) + '\n');
  } catch (e) {
    process.exit(1);    // the server went away
  }
}

function done(id, status, fields) {
  emit(Object.assign({ ev: 'done', id, status }, fields || { result: null, error: null }));
}

// --- the persistent context --------------------------------------------------------
const intrinsics = new Set(vm.runInNewContext('Object.getOwnPropertyNames(globalThis)'));
const sandbox = {};
for (const name of Object.getOwnPropertyNames(globalThis)) {
  if (intrinsics.has(name) || name === 'global' || name === 'console') continue;
  Object.defineProperty(sandbox, name, {   // lazy: don't load fetch & co. up front
    configurable: true,
    enumerable: false,
    get() { return globalThis[name]; },
    set(v) { Object.defineProperty(sandbox, name, { value: v, writable: true, configurable: true, enumerable: true }); },
  });
}
sandbox.console = new Console({ stdout, stderr, colorMode: false });
sandbox.require = createRequire(path.join(process.cwd(), '[cell]'));
const ctx = vm.createContext(sandbox);
const ctxGlobal = vm.runInContext('globalThis', ctx);
ctxGlobal.global = ctxGlobal;
const lexicalNames = new Set();    // top-level let/const/class names, for completion

// SIGINT handling.  vm's breakOnSigint watchdog installs its own SIGINT handler when
// a cell starts and, when the cell ends, Node's exit-on-SIGINT handler (vm also drops
// 'SIGINT' listeners, i.e. SIGINT -> default action, around each call), so a SIGINT
// landing at a cell boundary would kill the kernel.  The watchdog helper is
// process-wide and reference-counted, and a SIGINT goes to the most recently started
// breakOnSigint call.  So a worker thread sits inside nested breakOnSigint calls for
// good: the count never drops to zero, the watchdog handler stays installed, and
// main-thread cells start and stop without touching SIGINT.  An idle SIGINT interrupts
// the worker's innermost wait; it re-enters, and the outer levels absorb SIGINTs that
// arrive microseconds apart.  The inner levels are not re-entered while a cell runs,
// so that the cell stays the most recent and gets the SIGINT (one that lands within
// microseconds of a cell's start or end may be lost: press again).  The worker tells
// the main thread about SIGINTs only while an async cell is awaited.  Fallback
// (worker not ready within 3 s): a plain process.on('SIGINT') listener, with the race.
// Cells must not add process.on('SIGINT') listeners of their own.
const sigShared = new Int32Array(new SharedArrayBuffer(16));   // [SIGINTs, wait word, awaiting, busy]
const HOLDER = `
  const vm = require('vm');
  const { parentPort, workerData: shared } = require('worker_threads');
  let armed = false;
  const ctx = vm.createContext({ enter, Atomics, shared, arm: () => { if (!armed) parentPort.postMessage(armed = true); } });
  function enter(depth) {
    for (;;) {
      while (depth < 4 && Atomics.load(shared, 3)) Atomics.wait(shared, 3, 1);   // a cell runs
      try {
        return vm.runInContext(depth ? 'enter(' + (depth - 1) + ')' : 'arm(); Atomics.wait(shared, 1, 0)', ctx, { breakOnSigint: true });
      } catch (e) {
        Atomics.add(shared, 0, 1);
        if (Atomics.load(shared, 2)) parentPort.postMessage(false);
      }
    }
  }
  for (;;) { try { enter(8); } catch (e) { /* keep holding */ } }
`;

function armSigint(ready) {
  let fallback = null;
  const useListener = () => { process.on('SIGINT', onSigint); ready(); };
  try {
    const holder = new Worker(HOLDER, { eval: true, workerData: sigShared, stdout: false, stderr: false });
    holder.unref();
    holder.on('message', (armed) => {
      if (armed === true) { clearTimeout(fallback); ready(); } else onSigint();
    });
    holder.on('error', () => {});
    fallback = setTimeout(useListener, 3000);
  } catch (e) {
    useListener();
  }
}

let sigintsBeforeAwait = 0;
function onSigint() {
  if (pendingAwait && Atomics.load(sigShared, 0) !== sigintsBeforeAwait) pendingAwait();
}

function runInterruptible(code, options) {
  const script = new vm.Script(code, options);   // compile first: keep "busy" short
  Atomics.store(sigShared, 3, 1);   // busy
  try {
    return script.runInContext(ctx, { breakOnSigint: true });
  } finally {
    Atomics.store(sigShared, 3, 0);
    Atomics.notify(sigShared, 3);
  }
}

process.on('uncaughtException', (e) => writeAll(2, 'Uncaught ' + describe(e) + '\n'));
process.on('unhandledRejection', (e) => writeAll(2, 'Unhandled rejection: ' + describe(e) + '\n'));

function describe(e) {
  return (e && typeof e.stack === 'string') ? e.stack : util.inspect(e);
}

function cleanStack(e) {
  if (!e || typeof e.stack !== 'string') return 'Uncaught ' + util.inspect(e);
  const lines = e.stack.split('\n');
  const cut = lines.findIndex((l) => /^\s+at .*node:vm:/.test(l));
  return (cut < 0 ? lines : lines.slice(0, cut)).join('\n');
}

function errorInfo(e) {
  const isObj = e !== null && (typeof e === 'object' || typeof e === 'function');
  return {
    name: isObj && typeof e.name === 'string' ? e.name : 'Error',
    message: isObj && 'message' in e ? String(e.message) : util.inspect(e),
  };
}

function truncate(text) {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= RESULT_LIMIT) return text;
  return buf.subarray(0, RESULT_LIMIT - 3).toString('utf8').replace(/\uFFFD$/, '') + '\u2026';
}

let cells = 0;
let pendingAwait = null;  // set while awaiting an async cell: call it to give up

async function execute(id, code) {
  const filename = `cell-${++cells}`;
  let value;
  try {
    try {
      value = runInterruptible(code, { filename });
    } catch (e) {
      if (!(e && e.name === 'SyntaxError' && /await is only valid|for await/.test(e.message))) throw e;
      const promise = runInterruptible(`(async () => {\n${code}\n})()`,
        { filename: `${filename}[async]`, lineOffset: -1 });
      value = await new Promise((resolve, reject) => {
        pendingAwait = () => reject(Object.assign(new Error('Script execution was interrupted by `SIGINT`'),
          { code: 'ERR_SCRIPT_EXECUTION_INTERRUPTED' }));
        sigintsBeforeAwait = Atomics.load(sigShared, 0);
        Atomics.store(sigShared, 2, 1);
        promise.then(resolve, reject);
      }).finally(() => { pendingAwait = null; Atomics.store(sigShared, 2, 0); });
    }
    for (const m of code.matchAll(/(?:^|[;\n])\s*(?:let|const|class)\s+([A-Za-z_$][\w$]*)/g)) lexicalNames.add(m[1]);
    const result = value === undefined ? null : truncate(util.inspect(value));
    done(id, 'ok', { result, error: null });
  } catch (e) {
    if (e && e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
      writeAll(2, 'Interrupted: ' + e.message + '\n');
      return done(id, 'interrupted', { result: null, error: { name: 'Interrupted', message: e.message } });
    }
    writeAll(2, cleanStack(e) + '\n');
    done(id, 'error', { result: null, error: errorInfo(e) });
  }
}

const KEYWORDS = ('await break case catch class const continue debugger default delete do else ' +
  'export extends false finally for function if import in instanceof let new null return static ' +
  'super switch this throw true try typeof undefined var void while with yield').split(' ');

function complete(code, cursor) {
  const text = Array.from(code).slice(0, cursor).join('');
  const token = /[\w$.]*$/.exec(text)[0];
  const dot = token.lastIndexOf('.');
  const prefix = token.slice(dot + 1);
  let names = [];
  if (dot >= 0) {
    const expr = token.slice(0, dot);
    if (/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(expr)) {
      try {
        let obj = vm.runInContext(expr, ctx, { timeout: 200 });   // a dotted name: no calls
        for (obj = (obj === null || obj === undefined) ? null : Object(obj); obj; obj = Object.getPrototypeOf(obj)) {
          names.push(...Object.getOwnPropertyNames(obj));
        }
      } catch (e) { /* unknown name */ }
    }
  } else {
    names = [...Object.getOwnPropertyNames(ctxGlobal), ...lexicalNames, ...KEYWORDS];
  }
  const matches = [...new Set(names)].filter((n) => n.startsWith(prefix) && /^[A-Za-z_$][\w$]*$/.test(n)).sort();
  return { matches: matches.slice(0, 1000), cursor_start: cursor - Array.from(prefix).length };
}

function protocolError(id, message) {
  done(id, 'error', { result: null, error: { name: 'ProtocolError', message } });
}

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return protocolError(null, 'bad JSON: ' + e.message);
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    return protocolError(null, 'request is not a JSON object');
  }
  const id = req.id === undefined ? null : req.id;
  if (req.op === 'execute') {
    if (typeof req.code !== 'string') return protocolError(id, "execute needs a string 'code'");
    return execute(id, req.code);
  } else if (req.op === 'complete') {
    if (typeof req.code !== 'string') return protocolError(id, "complete needs a string 'code'");
    const len = Array.from(req.code).length;
    const cursor = Number.isInteger(req.cursor) ? Math.max(0, Math.min(req.cursor, len)) : len;
    let reply;
    try { reply = complete(req.code, cursor); } catch (e) { reply = { matches: [], cursor_start: cursor }; }
    return done(id, 'ok', reply);
  } else if (req.op === 'chdir') {
    if (typeof req.path !== 'string') return protocolError(id, "chdir needs a string 'path'");
    try {
      process.chdir(req.path);
      sandbox.require = createRequire(path.join(process.cwd(), '[cell]'));
    } catch (e) {
      return done(id, 'error', { result: null, error: { name: e.code || e.name, message: e.message } });
    }
    return done(id, 'ok');
  }
  return protocolError(id, 'unknown op ' + JSON.stringify(req.op === undefined ? null : req.op));
}

// --- request loop: one request at a time, in order ---------------------------------
const queue = [];
let buffered = '';
let pumping = false;
let ended = false;

async function pump() {
  if (pumping) return;
  pumping = true;
  while (queue.length) {
    const line = queue.shift();
    if (line.trim()) await handle(line);
  }
  pumping = false;
  if (ended) process.exit(0);   // even if cells left timers running
}

function start() {
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop();
    queue.push(...lines);
    pump();
  });
  process.stdin.on('end', () => {
    if (buffered) queue.push(buffered);
    ended = true;
    pump();
  });
  emit({ ev: 'ready', language: 'javascript', version: process.versions.node, pid: process.pid });
}

armSigint(start);   // ready is announced once SIGINT can no longer kill us
