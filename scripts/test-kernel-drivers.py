#!/usr/bin/env python3
"""Check the kernel drivers in config/kernels/{python3,bash,node} directly on the host.

Usage: scripts/test-kernel-drivers.py [python3|bash|node ...]

Each driver is started from its kernel.json (argv with /opt/kernel replaced by the spec
directory) with stdin/stdout/stderr pipes and fd 3 a pipe, and talked to over the
line-JSON protocol.  Prints one PASS/FAIL line per check; exit status 0 only if every
check passed.  Every wait has a timeout, so a broken driver fails instead of hanging.
"""
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "config", "kernels")
failures = 0

# Keep fd 3 occupied (by /dev/null) so that pipes never land on it; each driver's
# event pipe is moved onto fd 3 just for the Popen call.
_null = os.open(os.devnull, os.O_WRONLY)
PLACEHOLDER = fcntl.fcntl(_null, fcntl.F_DUPFD_CLOEXEC, 64)
os.close(_null)
os.dup2(PLACEHOLDER, 3, inheritable=False)


def check(lang, name, ok, detail=""):
    global failures
    if not ok:
        failures += 1
    print("%s  %-8s %s%s" % ("PASS" if ok else "FAIL", lang, name,
                              "" if ok or not detail else "  -- " + detail), flush=True)
    return ok


class Driver:
    def __init__(self, kernel, cwd):
        spec_dir = os.path.join(KERNELS, kernel)
        with open(os.path.join(spec_dir, "kernel.json")) as f:
            self.spec = json.load(f)
        argv = [a.replace("/opt/kernel", spec_dir) for a in self.spec["argv"]]
        env = dict(os.environ, **self.spec.get("env", {}))
        ev_r, ev_w = os.pipe()          # fd 3 is held by a placeholder, so both are > 3
        os.dup2(ev_w, 3)                # the child gets the write end as its fd 3
        os.close(ev_w)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, pass_fds=(3,), cwd=cwd, env=env)
        finally:
            os.dup2(PLACEHOLDER, 3, inheritable=False)
        self.fds = {"ev": ev_r, "out": self.proc.stdout.fileno(), "err": self.proc.stderr.fileno()}
        for fd in self.fds.values():
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.buf = {"ev": b"", "out": b"", "err": b""}
        self.first_seen = {}     # text -> monotonic time it first appeared on stdout
        self.watch = []
        self.events = []
        self.next_id = 100

    # -- plumbing ------------------------------------------------------------------------
    def pump(self, timeout):
        """Read whatever arrives within `timeout` seconds from fd 3, stdout and stderr."""
        live = [fd for fd in self.fds.values() if fd is not None]
        if not live:
            time.sleep(timeout)
            return
        ready, _, _ = select.select(live, [], [], timeout)
        for fd in ready:
            self.drain(fd)

    def drain(self, fd):
        key = next(k for k, v in self.fds.items() if v == fd)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.fds[key] = None
                return
            self.buf[key] += chunk
            if key == "out":
                now = time.monotonic()
                text = self.buf["out"].decode("utf-8", "replace")
                for w in self.watch:
                    if w not in self.first_seen and w in text:
                        self.first_seen[w] = now
            if key == "ev":
                *lines, self.buf["ev"] = self.buf["ev"].split(b"\n")
                for line in lines:
                    self.events.append(json.loads(line))

    def drain_output(self):
        for key in ("out", "err"):
            if self.fds[key] is not None:
                self.drain(self.fds[key])

    def wait_event(self, pred, timeout):
        end = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if pred(ev):
                    del self.events[i]
                    self.drain_output()   # non-blocking: only what is already in the pipes
                    return ev
            left = end - time.monotonic()
            if left <= 0 or self.fds["ev"] is None:
                return None
            self.pump(min(left, 0.05))

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, op, timeout=5.0, **fields):
        """Send a request and wait for its done; returns (event or None, stdout, stderr)."""
        self.next_id += 1
        rid = self.next_id
        self.buf["out"] = self.buf["err"] = b""
        self.send_raw((json.dumps(dict(op=op, id=rid, **fields)) + "\n").encode())
        ev = self.wait_event(lambda e: e.get("ev") == "done" and e.get("id") == rid, timeout)
        return ev, self.buf["out"].decode("utf-8", "replace"), self.buf["err"].decode("utf-8", "replace")

    def execute(self, code, timeout=5.0):
        return self.request("execute", timeout, code=code)

    def start_execute(self, code):
        self.next_id += 1
        self.buf["out"] = self.buf["err"] = b""
        self.send_raw((json.dumps({"op": "execute", "id": self.next_id, "code": code}) + "\n").encode())
        return self.next_id

    def wait_done(self, rid, timeout):
        return self.wait_event(lambda e: e.get("ev") == "done" and e.get("id") == rid, timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        if self.fds["ev"] is not None:
            os.close(self.fds["ev"])


# Per-language cells.  Each entry is the code for one check.
CELLS = {
    "python3": dict(
        language="python",
        set_state="x = 41", read_state="x + 1", state_result="42",
        out_err='import sys\nprint("out \u00e9\u2713")\nprint("err", file=sys.stderr)',
        stream='import time\nprint("first")\ntime.sleep(0.5)\nprint("second")',
        repr_code='"a" * 3', repr_result="'aaa'",
        error_code="def f():\n    return 1 / 0\nf()", error_name="ZeroDivisionError",
        error_stderr=["Traceback", "ZeroDivisionError", 'File "<cell-'], driver_file="driver.py",
        busy="y = 5\nwhile True:\n    pass", sleep="import time\ntime.sleep(100)",
        read_y="y", y_result="5",
        stdin_code="input()", stdin_error="EOFError",
        completions=[("import o", 8, "os", 7), ("x.bit_l", 7, "bit_length", 2), ("pri", 3, "print", 0)],
        cwd_code="import os\nos.getcwd()",
    ),
    "bash": dict(
        language="bash",
        set_state="x=41; f() { echo \"f:$1\"; }", read_state="echo $((x + 1)); f z", state_out="42\nf:z",
        out_err='echo "out \u00e9\u2713"; echo err >&2',
        stream="echo first; sleep 0.5; echo second",
        error_code="ls /nonexistent-dir-xyz", error_name="ExitStatus",
        error_stderr=["nonexistent-dir-xyz"], driver_file=None,
        busy="y=5; while true; do :; done", sleep="sleep 100",
        read_y="echo $y", y_out="5",
        stdin_code="read line", stdin_error="ExitStatus",
        completions=[("ech", 3, "echo", 0), ("echo $BASH_VERS", 15, "$BASH_VERSION", 5)],
        cwd_code="pwd",
    ),
    "node": dict(
        language="javascript",
        set_state="var x = 41; const k = 'kept'", read_state="x + 1 + k", state_result="'42kept'",
        out_err='console.log("out \u00e9\u2713"); console.error("err")',
        stream="console.log('first'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);"
               " console.log('second')",
        repr_code="({a: 1, b: [1, 2]})", repr_result="{ a: 1, b: [ 1, 2 ] }",
        error_code="function f() { return null.x }\nf()", error_name="TypeError",
        error_stderr=["TypeError", "at f (cell-"], driver_file="driver.js",
        busy="var y = 5; while (true) {}", sleep="await new Promise((resolve) => setTimeout(resolve, 100000))",
        read_y="y", y_result="5",
        stdin_code=None,
        completions=[("Math.fl", 7, "floor", 5), ("x.toFi", 6, "toFixed", 2), ("conso", 5, "console", 0)],
        cwd_code="process.cwd()",
    ),
}


def test_kernel(kernel):
    c = CELLS[kernel]
    tmp = tempfile.mkdtemp(prefix="tandem-kernel-")
    d = Driver(kernel, tmp)
    try:
        run_checks(kernel, c, d, tmp)
    finally:
        d.close()
        shutil.rmtree(tmp, ignore_errors=True)
    test_exit_cell(kernel)


def run_checks(kernel, c, d, tmp):
    ck = lambda name, ok, detail="": check(kernel, name, ok, detail)

    ready = d.wait_event(lambda e: e.get("ev") == "ready", 10)
    if not ck("ready line", ready is not None and ready.get("language") == c["language"]
              and ready.get("pid") == d.proc.pid and isinstance(ready.get("version"), str)
              and ready["version"], repr(ready)):
        return

    ev, out, err = d.execute(c["set_state"])
    ck("execute ok", ev is not None and ev["status"] == "ok" and ev.get("error") is None, repr(ev))
    ev, out, err = d.execute(c["read_state"])
    if "state_result" in c:
        ok = ev is not None and ev["status"] == "ok" and ev.get("result") == c["state_result"]
    else:
        ok = ev is not None and ev["status"] == "ok" and out.strip() == c["state_out"]
    ck("state survives between executes", ok, "%r out=%r" % (ev, out))

    ev, out, err = d.execute(c["out_err"])
    ck("stdout and stderr are separate (and flushed before done)",
       ev is not None and ev["status"] == "ok" and out == "out \u00e9\u2713\n" and err.strip() == "err",
       "%r out=%r err=%r" % (ev, out, err))

    d.watch = ["first"]
    t0 = time.monotonic()
    rid = d.start_execute(c["stream"])
    ev = d.wait_done(rid, 5)
    first = d.first_seen.get("first")
    out = d.buf["out"].decode()
    ck("streaming: first line before the sleep ends",
       ev is not None and first is not None and first - t0 < 0.4 and "second" in out,
       "first after %s s, ev=%r out=%r" % (None if first is None else round(first - t0, 3), ev, out))

    if "repr_code" in c:
        ev, out, err = d.execute(c["repr_code"])
        ck("result repr", ev is not None and ev.get("result") == c["repr_result"], repr(ev))
    else:
        ev, out, err = d.execute("echo hi")
        ck("result is null, output on stdout", ev is not None and ev.get("result") is None
           and out == "hi\n", "%r out=%r" % (ev, out))
    if kernel == "python3":
        ev, _, _ = d.execute("None")
        ck("None result is null", ev is not None and ev["status"] == "ok" and ev["result"] is None, repr(ev))
        ev, _, _ = d.execute("'a' * 100000")
        r = ev and ev.get("result") or ""
        ck("long repr truncated to 64 KiB with \u2026", len(r.encode()) <= 65536 and r.endswith("\u2026"),
           "len=%d" % len(r))
        ev, out, err = d.execute("import sys\nsys.exit(3)")
        ck("SystemExit is an error, kernel stays", ev is not None and ev["status"] == "error"
           and ev["error"]["name"] == "SystemExit" and d.proc.poll() is None, repr(ev))
    if kernel == "node":
        ev, _, _ = d.execute("const v = await new Promise((r) => setTimeout(() => r(6), 50)); return v * 7")
        ck("top-level await", ev is not None and ev["status"] == "ok" and ev.get("result") == "42", repr(ev))

    ev, out, err = d.execute(c["error_code"])
    ok = (ev is not None and ev["status"] == "error" and (ev.get("error") or {}).get("name") == c["error_name"]
          and all(s in err for s in c["error_stderr"]))
    if c["driver_file"]:
        ok = ok and c["driver_file"] not in err
    ck("error status, name and traceback on stderr", ok, "%r err=%r" % (ev, err))
    if kernel == "bash":
        ev, _, _ = d.execute("(exit 3)")
        ck("exit status reported", ev is not None and ev["status"] == "error"
           and ev["error"] == {"name": "ExitStatus", "message": "exit status 3"}, repr(ev))
        ev, out, _ = d.execute("echo $?")
        ck("$? carries over from the previous cell", out.strip() == "3", repr(out))

    for label, code in (("busy loop", c["busy"]), ("sleep" if kernel != "node" else "pending await", c["sleep"])):
        if code is None:
            continue
        rid = d.start_execute(code)
        time.sleep(0.3)
        early = d.wait_done(rid, 0)
        t0 = time.monotonic()
        os.kill(d.proc.pid, signal.SIGINT)
        ev = d.wait_done(rid, 2.0)
        ck("SIGINT interrupts a %s within 2 s" % label,
           early is None and ev is not None and ev["status"] == "interrupted",
           "early=%r ev=%r after %.2fs" % (early, ev, time.monotonic() - t0))
    ev, out, err = d.execute(c["read_y"])
    ok = ev is not None and ev["status"] == "ok"
    ok = ok and (ev.get("result") == c["y_result"] if "y_result" in c else out.strip() == c["y_out"])
    ck("state kept after interrupt", ok, "%r out=%r" % (ev, out))

    os.kill(d.proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.kill(d.proc.pid, signal.SIGINT)
    time.sleep(0.2)
    alive = d.proc.poll() is None
    ev, out, err = d.execute(c["read_y"])
    stray = [e for e in d.events]
    ck("SIGINT while idle is harmless", alive and ev is not None and ev["status"] == "ok" and not stray,
       "alive=%r ev=%r stray=%r" % (alive, ev, stray))

    if c["stdin_code"]:
        ev, out, err = d.execute(c["stdin_code"], timeout=3)
        ok = ev is not None and ev["status"] == "error" and ev["error"]["name"] == c["stdin_error"]
        ev2, _, _ = d.execute(c["read_y"])
        ck("cells cannot read the request stream (stdin is /dev/null)", ok and ev2 is not None
           and ev2["status"] == "ok", "%r %r" % (ev, ev2))

    for code, cursor, want, start in c["completions"]:
        ev, _, _ = d.request("complete", code=code, cursor=cursor)
        ck("complete %r -> %r" % (code, want), ev is not None and ev["status"] == "ok"
           and want in ev.get("matches", []) and ev.get("cursor_start") == start, repr(ev)[:300])

    sub = os.path.join(tmp, "sub dir")
    os.mkdir(sub)
    ev, _, _ = d.request("chdir", path=sub)
    ev2, out, _ = d.execute(c["cwd_code"])
    seen = (ev2 or {}).get("result") or out.strip()
    ck("chdir", ev is not None and ev["status"] == "ok" and sub in seen, "%r %r %r" % (ev, ev2, out))
    ev, _, _ = d.request("chdir", path=os.path.join(tmp, "missing"))
    ck("chdir to a missing directory is an error", ev is not None and ev["status"] == "error"
       and ev.get("error"), repr(ev))

    d.buf["out"] = d.buf["err"] = b""
    d.send_raw(b"this is not json\n")
    ev = d.wait_event(lambda e: e.get("ev") == "done" and e.get("id") is None, 5)
    ck("bad JSON -> ProtocolError", ev is not None and ev["status"] == "error"
       and ev["error"]["name"] == "ProtocolError", repr(ev))
    ev, _, _ = d.request("frobnicate")
    ck("unknown op -> ProtocolError with id", ev is not None and ev["status"] == "error"
       and ev["error"]["name"] == "ProtocolError", repr(ev))
    ev, out, _ = d.execute(c["read_y"])
    ck("driver keeps working after protocol errors", ev is not None and ev["status"] == "ok", repr(ev))

    d.proc.stdin.close()
    try:
        rc = d.proc.wait(2)
    except subprocess.TimeoutExpired:
        rc = "still running after 2 s"
    ck("EOF on stdin -> exit 0 within 2 s", rc == 0, "rc=%r" % (rc,))


def test_exit_cell(kernel):
    """What a cell that tries to end the interpreter does."""
    code = {"python3": "import os\nos._exit(4)", "bash": "exit 4", "node": "process.exit(4)"}[kernel]
    d = Driver(kernel, tempfile.gettempdir())
    try:
        if d.wait_event(lambda e: e.get("ev") == "ready", 10) is None:
            return check(kernel, "exit in a cell", False, "no ready")
        rid = d.start_execute(code)
        ev = d.wait_done(rid, 3)
        try:
            rc = d.proc.wait(3)
        except subprocess.TimeoutExpired:
            rc = None
        if kernel == "bash":
            check(kernel, "`exit` in a cell -> error ShellExit, driver exits non-zero",
                  ev is not None and ev["status"] == "error" and ev["error"]["name"] == "ShellExit"
                  and rc not in (None, 0), "ev=%r rc=%r" % (ev, rc))
        else:   # the interpreter itself exits: no done, the server notices the exit
            check(kernel, "hard exit in a cell ends the driver (exit %s)" % rc, rc is not None, "rc=%r" % rc)
    finally:
        d.close()


def main():
    kernels = sys.argv[1:] or ["python3", "bash", "node"]
    signal.signal(signal.SIGALRM, lambda *_: (print("FAIL  global timeout (300 s)", flush=True), os._exit(2)))
    signal.alarm(300)
    for kernel in kernels:
        try:
            test_kernel(kernel)
        except Exception as e:   # a crash in one kernel's checks is a failure, not a hang
            check(kernel, "test run", False, "%s: %s" % (type(e).__name__, e))
    print("%s: %d failed check(s)" % ("FAILED" if failures else "OK", failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
