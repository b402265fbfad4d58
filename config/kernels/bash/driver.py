"""Tandem kernel driver for bash: a small Python program that owns one bash child.

Protocol (the same for the python3, bash and node drivers):
  requests  stdin, one JSON object per line:
              {"op":"execute","id":7,"code":"x=1; echo $x"}
              {"op":"complete","id":8,"code":"ech","cursor":3}      cursor counts code points
              {"op":"chdir","id":9,"path":"/workspace"}
            EOF on stdin -> the shell and its process group are killed, exit 0.  Blank
            lines are ignored.  Bad JSON, a non-object, an unknown op or missing fields
            -> done/error "ProtocolError", then carry on.
  events    fd 3, one JSON object per line, each line sent with one write():
              {"ev":"ready","language":"bash","version":"5.2.15(1)-release","pid":123}
              {"ev":"done","id":7,"status":"ok"|"error"|"interrupted","result":null,
               "error":null|{"name":"ExitStatus","message":"exit status 1"}}
              {"ev":"done","id":8,"status":"ok","matches":[..],"cursor_start":0}
  output    bash writes straight to our fd 1 / fd 2 (unbuffered, streamed).
  SIGINT    while a cell runs it is forwarded to bash's process group: the cell stops,
            status "interrupted", the shell and its variables stay; ignored while idle.

How it works: bash runs as an *interactive* shell (--norc --noediting -i, job control
off, no history, empty prompts) reading commands from a pipe, because only an
interactive bash aborts a running command list on SIGINT and carries on.  Each request
is ONE line on that pipe; the cell is passed as `eval $'...'` with stdin /dev/null (so
`read`/`cat` cannot eat later requests).  PROMPT_COMMAND reports "\\036<seq> <$?>" on a
private status pipe before every prompt, i.e. once the line has finished or was aborted;
complete/chdir replies are sent as lines on that pipe before the marker.  `$?` at the
start of a cell is the exit status of the previous cell.  As in a terminal, bash writes
a newline to stderr when a cell is interrupted and "[1] PID" for a background job.
SIGTERM: the shell's process group gets SIGHUP (then SIGKILL) and the driver exits 0.

`exit` (or anything else that ends the shell, e.g. `set -e` plus a failing command):
the request gets status "error" with error {"name":"ShellExit",...}, then this driver
exits with status 1 so that the server restarts the kernel (all shell state is lost).
Do not unset PROMPT_COMMAND or the __tandem_* helpers (they are read-only).
"""
import json
import os
import re
import select
import shutil
import signal
import subprocess

# Private, non-inheritable copies of the protocol fds; fd 0 becomes /dev/null.
EVENTS = os.dup(3)
os.close(3)
REQUESTS = os.dup(0)
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)

RESULT_LIMIT = 64 * 1024

_seq = 0            # number of the line most recently sent to bash
_busy = False       # True while an execute runs: SIGINT is forwarded then
_interrupted = False
_pending = b""      # unread bytes from the status pipe


class ShellGone(Exception):
    pass


def emit(obj):
    try:
        data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    except UnicodeEncodeError:   # lone surrogates: let json escape them
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode("ascii")
    try:
        n = os.write(EVENTS, data)
        while n < len(data):     # only after a signal interrupted a huge write
            data = data[n:]
            n = os.write(EVENTS, data)
    except OSError:
        shutdown(1)


def done(rid, status="ok", result=None, error=None, **extra):
    # bash writes fd 1/2 directly and unbuffered, so there is nothing left to flush
    msg = {"ev": "done", "id": rid, "status": status}
    msg.update(extra or {"result": result, "error": error})
    emit(msg)


def quote(s):
    """Quote s as a one-line bash $'...' string."""
    out = []
    for ch in s.replace("\0", ""):
        if ch in "\\'":
            out.append("\\" + ch)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append("\\%03o" % ord(ch))
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def start_shell():
    status_r, status_w = os.pipe()
    err = os.dup(2)      # bash's stderr is /dev/null until the init line (hides the
                         # "no job control in this shell" warnings of `bash -i`)
    env = dict(os.environ, PS1="", PS2="")
    for name in ("PROMPT_COMMAND", "PS0", "BASH_ENV", "ENV"):
        env.pop(name, None)
    shell = subprocess.Popen(
        [shutil.which("bash") or "/bin/bash", "--norc", "--noprofile", "--noediting", "-i"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, pass_fds=(status_w, err),
        env=env, start_new_session=True)   # own process group, for killpg
    os.close(status_w)
    os.close(err)
    init = "; ".join([
        "exec 2>&%d %d>&-" % (err, err),
        "set +H +m +o history",
        "unset HISTFILE MAILCHECK",
        "export -n PS1 PS2",
        "__tandem_last=0 __tandem_seq=0 __tandem_user=0",
        "__tandem_ret() { return \"$1\"; }",
        "__tandem_prompt() { local s=$?; [ \"$__tandem_user\" = 1 ] && __tandem_last=$s;"
        " printf '\\036%%s %%s\\n' \"$__tandem_seq\" \"$s\" >&%d; }" % status_w,
        "PROMPT_COMMAND=__tandem_prompt",
        "readonly PROMPT_COMMAND; readonly -f __tandem_ret __tandem_prompt",
        "printf '%%s\\n' \"$BASH_VERSION\" >&%d" % status_w,
    ])
    return shell, status_r, status_w, init


def send(cmd, user=False):
    """Send one command line to bash; return (exit status, payload lines)."""
    global _seq
    _seq += 1
    line = "__tandem_seq=%d __tandem_user=%d; %s\n" % (_seq, int(user), cmd)
    try:
        shell.stdin.write(line.encode("utf-8", "surrogateescape"))
        shell.stdin.flush()
    except OSError:
        raise ShellGone()
    return wait_marker(_seq)


def wait_marker(seq):
    global _pending
    payload = []
    while True:
        while b"\n" in _pending:
            line, _pending = _pending.split(b"\n", 1)
            if not line.startswith(b"\x1e"):
                payload.append(line.decode("utf-8", "replace"))
                continue
            got, status = (int(x) for x in line[1:].split())
            if got == seq:
                return status, payload
            payload = []         # a stale prompt (SIGINT while bash was idle) ...
            if _interrupted:     # ... or our line was discarded by the interrupt
                return 130, payload
        try:
            ready, _, _ = select.select([STATUS], [], [], 0.2)
        except InterruptedError:
            continue
        if ready:
            chunk = os.read(STATUS, 65536)
            if not chunk:
                raise ShellGone()
            _pending += chunk
        elif shell.poll() is not None:   # background jobs may keep the pipe open
            raise ShellGone()


def on_sigint(signum, frame):
    global _interrupted
    if _busy:
        _interrupted = True
        try:
            os.killpg(shell.pid, signal.SIGINT)
        except OSError:
            pass


def shutdown(code, *_):
    """Stop bash and everything it started, then exit."""
    for sig in (signal.SIGHUP, signal.SIGKILL):
        try:
            os.killpg(shell.pid, sig)
            shell.wait(1)
        except (OSError, subprocess.TimeoutExpired):
            pass
    os._exit(code)


def execute(rid, code):
    global _busy, _interrupted
    _busy, _interrupted = True, False
    try:
        status, _ = send('__tandem_ret "$__tandem_last"; eval %s </dev/null' % quote(code), user=True)
    finally:
        _busy = False
    if _interrupted and status != 0:
        done(rid, "interrupted", error={"name": "Interrupted", "message": "interrupted (exit status %d)" % status})
    elif status:
        done(rid, "error", error={"name": "ExitStatus", "message": "exit status %d" % status})
    else:
        done(rid, "ok")


def complete(code, cursor):
    word = re.search(r"[^\s;|&<>()`'\"=]*$", code[:cursor]).group()
    prefix, body = "", word
    if word.startswith("${"):
        prefix, body, kinds = "${", word[2:], "-v"
    elif word.startswith("$"):
        prefix, body, kinds = "$", word[1:], "-v"
    elif "/" in word:
        kinds = "-f"
    else:
        kinds = "-A function -A variable -abck"
    _, lines = send("compgen %s -- %s 2>/dev/null >&%d" % (kinds, quote(body), STATUS_W))
    names = sorted({prefix + n for n in lines if n and not n.startswith("__tandem")})
    return names[:1000], cursor - len(word)


def protocol_error(rid, message):
    done(rid, "error", error={"name": "ProtocolError", "message": message})


def handle(line):
    try:
        req = json.loads(line)
    except ValueError as e:
        return protocol_error(None, "bad JSON: %s" % e)
    if not isinstance(req, dict):
        return protocol_error(None, "request is not a JSON object")
    rid, op = req.get("id"), req.get("op")
    try:
        if op == "execute":
            if not isinstance(req.get("code"), str):
                return protocol_error(rid, "execute needs a string 'code'")
            execute(rid, req["code"])
        elif op == "complete":
            code, cursor = req.get("code"), req.get("cursor")
            if not isinstance(code, str):
                return protocol_error(rid, "complete needs a string 'code'")
            if not isinstance(cursor, int) or isinstance(cursor, bool):
                cursor = len(code)
            matches, start = complete(code, max(0, min(cursor, len(code))))
            done(rid, "ok", matches=matches, cursor_start=start)
        elif op == "chdir":
            path = req.get("path")
            if not isinstance(path, str):
                return protocol_error(rid, "chdir needs a string 'path'")
            status, lines = send("cd -- %s 2>&%d" % (quote(path), STATUS_W))
            if status:
                msg = " ".join(lines).replace("bash: cd: ", "") or "cd failed"
                return done(rid, "error", error={"name": "ChdirError", "message": msg})
            try:
                os.chdir(path)   # keep the driver in step (not essential)
            except OSError:
                pass
            done(rid, "ok")
        else:
            protocol_error(rid, "unknown op %r" % (op,))
    except ShellGone:
        try:
            how = "with status %d" % shell.wait(2)
        except subprocess.TimeoutExpired:
            how = "(closed its status pipe)"
        done(rid, "error", error={"name": "ShellExit", "message":
             "bash exited %s; the kernel stops and must be restarted" % how})
        shutdown(1)


def requests():
    buf = b""
    while True:
        chunk = os.read(REQUESTS, 65536)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        yield from lines
    if buf:
        yield buf


if __name__ == "__main__":
    signal.signal(signal.SIGINT, on_sigint)
    shell, STATUS, STATUS_W, init = start_shell()
    signal.signal(signal.SIGTERM, lambda *_: shutdown(0))
    shell.stdin.write(init.encode() + b"\n")
    shell.stdin.flush()
    _seq = 0
    try:
        _, info = wait_marker(0)
    except ShellGone:
        shutdown(1)
    emit({"ev": "ready", "language": "bash", "version": (info or ["?"])[0], "pid": os.getpid()})
    for raw in requests():
        if raw.strip():
            handle(raw.decode("utf-8", "replace"))
    shutdown(0)
