#!/usr/bin/env python3
"""Tandem's Autobahn|Testsuite runner (RFC 6455 / RFC 7692 conformance).

Python 3, stdlib only.  wstest itself lives in the Python 2.7 venv made by
scripts/autobahn-install.sh ($AUTOBAHN_VENV, default /tmp/tandem-autobahn/venv).

usage:
  run.py server --url ws://127.0.0.1:PORT/echo [selection] [options]
      fuzzingclient mode: the suite is the client and tests the echo server at URL.
  run.py client [selection] [options] -- COMMAND ARG...
      fuzzingserver mode: the suite listens on 127.0.0.1 (free port unless --port), then
      COMMAND runs with AUTOBAHN_URL (e.g. ws://127.0.0.1:40293) and AUTOBAHN_AGENT set
      ("{url}" and "{agent}" in its arguments are replaced too).  COMMAND must connect
      $AUTOBAHN_URL/getCaseCount, then runCase?case=i&agent=$AUTOBAHN_AGENT for i in 1..N
      echoing every message, and may connect updateReports; after it exits this runner
      requests the report itself.
  run.py {server|client} --list [selection]
      print the selected case ids with their descriptions, run nothing.

selection:
  --cases P,P..   case patterns (default '*'); repeatable.  Patterns are wstest's own:
                  '*' is a wildcard and a pattern matches from the start of the id
                  ('1.*' = 1.1.1..1.2.8, not 10.1.1); without '*' it must be an exact id.
  --exclude P,P.. patterns to leave out; repeatable.
  --sample-compression K
                  add a deterministic sample of K case ids from 12.* and K from 13.*
                  (evenly spread over each group), even if --exclude removed them.

Prints a per-section table (OK / NON-STRICT / INFORMATIONAL / UNIMPLEMENTED / FAILED /
MISSING), the failed cases and, as the last line, `autobahn: N passed, M failed`.
Passed = behavior OK, NON-STRICT, INFORMATIONAL, and UNIMPLEMENTED unless
--unimplemented-fail.  Exit status: 0 every selected case passed, 1 some case failed,
2 harness error (server unreachable, wstest crashed or timed out, bad arguments).
Progress goes to stderr, the summary to stdout.

env: AUTOBAHN_HOME (default /tmp/tandem-autobahn), AUTOBAHN_VENV (default
$AUTOBAHN_HOME/venv), AUTOBAHN_WORKDIR_BASE (temp work dirs, default $TMPDIR or /tmp).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_HOME = "/tmp/tandem-autobahn"
HOST = "127.0.0.1"
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
PASSING = ("OK", "NON-STRICT", "INFORMATIONAL")
CLOSE_PROBLEMS = ("FAILED", "UNCLEAN")
COMPRESSION_SECTIONS = ("12", "13")
REPORT_MARKER = ".autobahn-report-dir"


class HarnessError(Exception):
    pass


def log(msg):
    sys.stderr.write("autobahn: %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------- the venv

def venv_python():
    home = os.environ.get("AUTOBAHN_HOME", DEFAULT_HOME)
    venv = os.environ.get("AUTOBAHN_VENV", os.path.join(home, "venv"))
    py = os.path.join(venv, "bin", "python")
    if not os.access(py, os.X_OK):
        raise HarnessError("Autobahn|Testsuite venv not found at %s; run scripts/autobahn-install.sh "
                           "first (or set AUTOBAHN_VENV)" % venv)
    return py


# --------------------------------------------------------------------------- case selection

def split_patterns(values):
    """['1.*,2.*', '3.1'] -> ['1.*', '2.*', '3.1']"""
    return [p for v in values or [] for p in re.split(r"[,\s]+", v) if p]


def case_key(case_id):
    return tuple(int(x) for x in case_id.split("."))


def section_of(case_id):
    return case_id.split(".")[0]


def sample_compression(all_ids, k):
    """K ids of 12.* and K of 13.*, one from the middle of each of K equal strata."""
    out = []
    for sec in COMPRESSION_SECTIONS:
        ids = sorted((c for c in all_ids if section_of(c) == sec), key=case_key)
        n, kk = len(ids), min(k, len(ids))
        out += [ids[(2 * i + 1) * n // (2 * kk)] for i in range(kk)]
    return out


def resolve_selection(args):
    """Returns (info, spec_cases, spec_excludes) using the testsuite's own pattern code."""
    cases = split_patterns(args.cases) or ["*"]
    excludes = split_patterns(args.exclude)
    spec = {"cases": cases, "exclude-cases": excludes}
    out = subprocess.run([venv_python(), os.path.join(HERE, "list_cases.py"), json.dumps(spec)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if out.returncode != 0:
        raise HarnessError("could not resolve case patterns:\n" + out.stderr[-2000:])
    info = json.loads(out.stdout)
    if info["unknown"]:
        raise HarnessError("unknown case id(s): %s (use '*' as wildcard, e.g. 12.*)"
                           % ", ".join(info["unknown"]))
    if args.sample_compression:
        extra = sample_compression(info["all"], args.sample_compression)
        info["sample"] = extra
        info["cases"] = sorted(set(info["cases"]) | set(extra), key=case_key)
        cases, excludes = list(info["cases"]), []   # wstest gets the exact ids
    if not info["cases"]:
        raise HarnessError("no case matches cases=%s exclude=%s" % (cases, excludes))
    # "WebSocket Compression (different payloads)" -> "Compression (different payloads)"
    info["categories"] = dict((str(k), re.sub(r"^WebSocket ", "", v))
                              for k, v in info["categories"].items())
    return info, cases, excludes


# --------------------------------------------------------------------------- processes

def wait_for_port(host, port, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def free_port(host=HOST):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def kill_group(proc, grace=10):
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass


class WstestRun(object):
    """Runs wstest (loopback-bound) in its own process group, logs its output, tracks progress."""

    RUNNING = re.compile(r"Running test case ID (\S+) for agent")
    PROGRESS_EVERY = 60.0

    def __init__(self, wstest_args, workdir, info, verbose=False):
        self.wstest_args = wstest_args
        self.workdir = workdir
        self.info = info
        self.verbose = verbose
        self.log_path = os.path.join(workdir, "wstest.log")
        self.section_start = {}
        self.section_end = {}
        self.case_start = {}
        self.current_section = None
        self.started_at = self.ended_at = None
        self.last_progress = 0.0
        self.lines = []
        self.proc = None
        self._reader = None

    def start(self):
        self.started_at = self.last_progress = time.time()
        self.proc = subprocess.Popen(
            [venv_python(), os.path.join(HERE, "wstest_loopback.py")] + self.wstest_args,
            cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, universal_newlines=True,
            errors="replace", bufsize=1,
            env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore"))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def tail(self, n=8):
        return "\n  ".join(self.lines[-n:])

    def _read(self):
        total = len(self.info["cases"])
        with open(self.log_path, "w") as logf:
            for line in self.proc.stdout:
                now = time.time()
                logf.write("%.3f %s" % (now - self.started_at, line))
                logf.flush()
                self.lines.append(line.rstrip("\n"))
                if len(self.lines) > 400:
                    del self.lines[:200]
                if self.verbose:
                    sys.stderr.write(line)
                m = self.RUNNING.search(line)
                if not m:
                    continue
                cid = m.group(1)
                self.case_start[cid] = now
                sec = section_of(cid)
                if sec != self.current_section:
                    if self.current_section is not None:
                        self.section_end.setdefault(self.current_section, now)
                    self.section_start.setdefault(sec, now)
                    self.current_section = sec
                    if not self.verbose:
                        log("[%6.1fs] section %s (%s), case %d/%d ..." % (
                            now - self.started_at, sec, self.info["categories"].get(sec, "?"),
                            len(self.case_start), total))
                        self.last_progress = now
                elif not self.verbose and now - self.last_progress >= self.PROGRESS_EVERY:
                    log("[%6.1fs] case %s, %d/%d" % (now - self.started_at, cid,
                                                     len(self.case_start), total))
                    self.last_progress = now

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise HarnessError("wstest did not finish within %ds (killed); last output:\n  %s"
                               % (timeout, self.tail(5)))
        self._finish()
        return rc

    def stop(self):
        kill_group(self.proc)
        self._finish()

    def _finish(self):
        if self._reader:
            self._reader.join(timeout=10)
        if self.ended_at is None:
            self.ended_at = time.time()
        if self.current_section is not None:
            self.section_end.setdefault(self.current_section, self.ended_at)

    def section_seconds(self, results):
        """Per section: first case start .. last case end (its start + reported duration)."""
        out = {}
        for sec, t in self.section_start.items():
            ends = [self.case_start[c] + (results[c].get("duration") or 0) / 1000.0
                    for c in self.case_start if section_of(c) == sec and c in results]
            end = max(ends) if ends else self.section_end.get(sec, self.ended_at or time.time())
            out[sec] = end - t
        return out


def request_report(port, agent, timeout=120):
    """Tiny stdlib WebSocket client: opens /updateReports and waits for the server's close."""
    req = ("GET /updateReports?agent=%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % (agent, HOST, port))
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(req.encode("ascii"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise HarnessError("fuzzing server closed the updateReports request")
            buf += chunk
        status = buf.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise HarnessError("updateReports refused: %r" % status)
        # The server writes the reports, then sends a close frame: answer it, wait for EOF.
        rest = buf.split(b"\r\n\r\n", 1)[1]
        while len(rest) < 2:
            chunk = s.recv(4096)
            if not chunk:
                return
            rest += chunk
        if rest[0] & 0x0F == 0x8:
            s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # masked close, code 1000
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass


# --------------------------------------------------------------------------- verdicts

def verdict(entry, unimplemented_fails, strict_close):
    """(passed, label) for one index.json entry; None = never reported."""
    if entry is None:
        return False, "MISSING"
    b, bc = entry.get("behavior"), entry.get("behaviorClose")
    if b == "UNIMPLEMENTED":
        return not unimplemented_fails, b
    if b in PASSING:
        if strict_close and bc in CLOSE_PROBLEMS:
            return False, "CLOSE-" + bc
        return True, b
    return False, b or "?"


def load_results(report_dir, agent):
    path = os.path.join(report_dir, "index.json")
    if not os.path.exists(path):
        return agent, None
    with open(path) as f:
        index = json.load(f)
    if agent in index:
        return agent, index[agent]
    if len(index) == 1:
        only = next(iter(index))
        return only, index[only]
    if not index:
        return agent, {}
    raise HarnessError("index.json has agents %s, none is %r" % (sorted(index), agent))


def case_details(report_dir, entry):
    try:
        with open(os.path.join(report_dir, entry["reportfile"])) as f:
            return json.load(f)
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def summarize(report_dir, info, run, args, out=sys.stdout):
    """Prints the per-section table and the failed cases; returns the summary dict."""
    expected = info["cases"]
    categories = info["categories"]
    agent, results = load_results(report_dir, args.agent)
    report_missing = results is None
    results = results or {}

    keys = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "MISSING")
    sections, failed_cases, close_notes = {}, [], {}
    counts = dict((k, 0) for k in keys)
    passed = 0
    for cid in expected:
        s = sections.setdefault(section_of(cid), dict(dict((k, 0) for k in keys),
                                                      cases=0, close_not_ok=0))
        s["cases"] += 1
        entry = results.get(cid)
        ok, label = verdict(entry, args.unimplemented_fail, args.strict_close)
        if entry is None:
            key = "MISSING"
        else:
            key = entry.get("behavior") if entry.get("behavior") in BEHAVIORS else "FAILED"
            bc = entry.get("behaviorClose")
            if bc not in ("OK", "INFORMATIONAL"):
                s["close_not_ok"] += 1
                close_notes.setdefault(str(bc), []).append(cid)
        s[key] += 1
        counts[key] += 1
        if ok:
            passed += 1
        else:
            failed_cases.append((cid, label, entry))
    failed = len(failed_cases)

    secs = run.section_seconds(results) if run and run.started_at else {}
    total_wall = (run.ended_at - run.started_at) if run and run.ended_at else None
    v = info["versions"]
    w = out.write
    w("\nAutobahn|Testsuite %s (autobahn %s, Python %s) -- %s, agent %r\n" % (
        v["autobahntestsuite"], v["autobahn"], v["python"], args.mode_name, agent))
    row = "%-4s %-34s %5s %5s %6s %5s %6s %6s %5s %6s %7s\n"
    w(row % ("sec", "name", "cases", "OK", "NONSTR", "INFO", "UNIMPL", "FAILED", "MISS",
             "close!", "wall_s"))
    for sec in sorted(sections, key=int):
        s = sections[sec]
        w(row % (sec, categories.get(sec, "?")[:34], s["cases"], s["OK"], s["NON-STRICT"],
                 s["INFORMATIONAL"], s["UNIMPLEMENTED"], s["FAILED"], s["MISSING"],
                 s["close_not_ok"], ("%.1f" % secs[sec]) if sec in secs else "-"))
    w(row % ("all", "", len(expected), counts["OK"], counts["NON-STRICT"],
             counts["INFORMATIONAL"], counts["UNIMPLEMENTED"], counts["FAILED"],
             counts["MISSING"], sum(s["close_not_ok"] for s in sections.values()),
             ("%.1f" % total_wall) if total_wall is not None else "-"))

    if close_notes:
        w("close behaviour other than OK (report's close column; %s):\n" % (
            "counted as failed (--strict-close)" if args.strict_close
            else "not counted unless --strict-close"))
        for bc, ids in sorted(close_notes.items()):
            w("  %-14s %3d: %s%s\n" % (bc, len(ids), " ".join(ids[:30]),
                                       " ..." if len(ids) > 30 else ""))
    if counts["UNIMPLEMENTED"]:
        w("UNIMPLEMENTED (%d): permessage-deflate was not negotiated; %s\n" % (
            counts["UNIMPLEMENTED"], "counted as failed (--unimplemented-fail)"
            if args.unimplemented_fail else "counted as passed"))
    if report_missing:
        w("NO REPORT: wstest wrote no index.json; every selected case counts as failed.\n")
    missing = [cid for cid, _, entry in failed_cases if entry is None]
    if missing:
        w("missing cases (%d, never reported; counted as failed): %s%s\n" % (
            len(missing), " ".join(missing[:20]), " ..." if len(missing) > 20 else ""))
    detailed = [(cid, label, entry) for cid, label, entry in failed_cases if entry is not None]
    if detailed:
        w("failed cases (%d):\n" % len(detailed))
        for cid, label, entry in detailed[:args.max_failures]:
            w("  %-8s %-13s close=%s code=%s  %s\n" % (
                cid, label, entry.get("behaviorClose"), entry.get("remoteCloseCode"),
                info["descriptions"].get(cid, "")[:90]))
            d = case_details(report_dir, entry)
            if d:
                w("           result: %s | %s\n" % (str(d.get("result", ""))[:120],
                                                    str(d.get("resultClose", ""))[:80]))
        if len(detailed) > args.max_failures:
            w("  ... and %d more (see the HTML/JSON report)\n" % (len(detailed) - args.max_failures))

    return {
        "mode": args.mode_name,
        "agent": agent,
        "versions": v,
        "total": len(expected),
        "passed": passed,
        "failed": failed,
        "counts": counts,
        "wall_seconds": round(total_wall, 1) if total_wall is not None else None,
        "sections": dict((sec, dict(s, name=categories.get(sec, "?"),
                                    wall_seconds=round(secs[sec], 1) if sec in secs else None))
                         for sec, s in sections.items()),
        "failed_cases": [{"id": cid, "verdict": label,
                          "behavior": (e or {}).get("behavior"),
                          "behaviorClose": (e or {}).get("behaviorClose"),
                          "remoteCloseCode": (e or {}).get("remoteCloseCode")}
                         for cid, label, e in failed_cases],
        "close_not_ok": close_notes,
        "passing_behaviors": list(PASSING) + ([] if args.unimplemented_fail else ["UNIMPLEMENTED"]),
        "strict_close": bool(args.strict_close),
    }


# --------------------------------------------------------------------------- work dirs

def prepare_workdir(args):
    """--report-dir DIR is used as the work dir (emptied first, only if it is ours or empty);
    otherwise a temp dir that is deleted after a clean pass."""
    if args.report_dir:
        d = os.path.abspath(args.report_dir)
        if os.path.isdir(d) and os.listdir(d) and not os.path.exists(os.path.join(d, REPORT_MARKER)):
            raise HarnessError("--report-dir %s is not empty and was not made by run.py; "
                               "refusing to delete it" % d)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        open(os.path.join(d, REPORT_MARKER), "w").close()
        return d
    base = os.environ.get("AUTOBAHN_WORKDIR_BASE") or None
    if base:
        os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix="autobahn-%s-" % args.mode_name, dir=base)


def finish(summary, workdir, args, error):
    """Writes summaries, prints where things are and the final line; returns the exit code."""
    if error:
        summary["error"] = error
    if args.json_summary:
        with open(args.json_summary, "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    out = sys.stdout
    if args.report_dir:
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
        out.write("report: %s\n" % os.path.join(workdir, "index.html"))
    elif summary["failed"] or error or args.keep:
        out.write("work dir kept: %s (index.html, wstest.log)\n" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    out.write("autobahn: %d passed, %d failed\n" % (summary["passed"], summary["failed"]))
    out.flush()
    if error:
        return 2
    return 1 if summary["failed"] else 0


def write_spec(workdir, spec):
    with open(os.path.join(workdir, "spec.json"), "w") as f:
        json.dump(spec, f, indent=2)


def list_cases(info):
    sample = set(info.get("sample", []))
    for cid in info["cases"]:
        print("%-8s %s%s" % (cid, info["descriptions"].get(cid, ""),
                             "  [sample]" if cid in sample else ""))
    print("%d cases" % len(info["cases"]))
    return 0


# --------------------------------------------------------------------------- modes

def run_server(args, info, cases, excludes):
    """fuzzingclient: wstest connects to the echo server at args.url."""
    u = urlparse(args.url)
    port = u.port or (443 if u.scheme == "wss" else 80)
    workdir = prepare_workdir(args)
    write_spec(workdir, {"outdir": workdir, "servers": [{"agent": args.agent, "url": args.url}],
                         "cases": cases, "exclude-cases": excludes, "exclude-agent-cases": {}})
    log("%d cases against %s (work dir %s)" % (len(info["cases"]), args.url, workdir))
    run, error = None, None
    if not wait_for_port(u.hostname, port, 5):
        error = "cannot connect to %s:%d" % (u.hostname, port)
    else:
        run = WstestRun(["--mode", "fuzzingclient", "--spec", "spec.json"], workdir, info,
                        verbose=args.verbose)
        try:
            run.start()
            rc = run.wait(args.timeout)
            if rc != 0:
                error = "wstest exited with status %s; tail of wstest.log:\n  %s" % (rc, run.tail())
            elif not os.path.exists(os.path.join(workdir, "index.json")):
                error = "wstest wrote no report; tail of wstest.log:\n  %s" % run.tail()
            else:
                refused = [l for l in run.lines if l.startswith("Connection to ") and " failed " in l]
                if refused:
                    error = refused[-1] + " (the cases after it were not run)"
        except HarnessError as e:
            error = str(e)
        except KeyboardInterrupt:
            run.stop()
            error = "interrupted"
    return workdir, run, error


def run_client(args, info, cases, excludes):
    """fuzzingserver: wstest listens on 127.0.0.1, the client command connects to it."""
    port = args.port or free_port()
    url = "ws://%s:%d" % (HOST, port)
    command = [w.replace("{url}", url).replace("{agent}", args.agent) for w in args.command]
    workdir = prepare_workdir(args)
    write_spec(workdir, {"url": url, "outdir": workdir, "cases": cases,
                         "exclude-cases": excludes, "exclude-agent-cases": {}})
    log("%d cases, fuzzing server %s (work dir %s)" % (len(info["cases"]), url, workdir))
    run = WstestRun(["--mode", "fuzzingserver", "--spec", "spec.json", "--webport", "0"],
                    workdir, info, verbose=args.verbose)
    client, error = None, None
    client_log = os.path.join(workdir, "client.log")
    try:
        run.start()
        if not wait_for_port(HOST, port, 30) or run.proc.poll() is not None:
            raise HarnessError("fuzzing server did not start; tail of wstest.log:\n  %s" % run.tail())
        env = dict(os.environ, AUTOBAHN_URL=url, AUTOBAHN_AGENT=args.agent)
        log("client: %s" % " ".join(command))
        with open(client_log, "w") as clog:
            try:
                client = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                          stdout=None if args.verbose else clog,
                                          stderr=None if args.verbose else subprocess.STDOUT,
                                          start_new_session=True)
            except OSError as e:
                raise HarnessError("cannot start the client %r: %s" % (command[0], e))
            remaining = max(1, args.timeout - (time.time() - run.started_at))
            try:
                crc = client.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                raise HarnessError("client did not finish within %ds (killed)" % args.timeout)
        if crc != 0:
            log("warning: client exited with status %d%s" % (
                crc, "" if args.verbose else "; tail of client.log:"))
            if not args.verbose:
                with open(client_log, errors="replace") as f:
                    for line in f.readlines()[-10:]:
                        sys.stderr.write("  " + line)
        if run.proc.poll() is not None:
            raise HarnessError("fuzzing server died; tail of wstest.log:\n  %s" % run.tail())
        time.sleep(0.5)  # let the last case's connectionLost be recorded
        request_report(port, args.agent)
    except HarnessError as e:
        error = str(e)
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        kill_group(client, grace=2)
        run.stop()
    return workdir, run, error


# --------------------------------------------------------------------------- CLI

def build_parser():
    p = argparse.ArgumentParser(prog="run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", metavar="{server,client}")
    sub.required = True
    ps = sub.add_parser("server", help="test an echo server (wstest fuzzingclient)")
    ps.add_argument("--url", help="ws:// URL of the echo server under test")
    pc = sub.add_parser("client", help="test a client command (wstest fuzzingserver)",
                        usage="run.py client [options] -- COMMAND ARG...")
    pc.add_argument("--port", type=int, default=0, help="fuzzing server port (default: a free one)")
    for q in (ps, pc):
        q.add_argument("--cases", action="append", default=[], metavar="P,P..",
                       help="case patterns, comma-separated, repeatable (default '*')")
        q.add_argument("--exclude", "-x", action="append", default=[], metavar="P,P..",
                       help="case patterns to leave out, comma-separated, repeatable")
        q.add_argument("--sample-compression", type=int, default=0, metavar="K",
                       help="add a deterministic sample of K ids of 12.* and K of 13.*")
        q.add_argument("--list", action="store_true", help="print the selected case ids, run nothing")
        q.add_argument("--agent", default="tandem", help="agent name in the report (default tandem)")
        q.add_argument("--report-dir", metavar="DIR",
                       help="write spec, wstest.log, HTML/JSON report and summary.json here "
                            "(replaced on each run); default: a temp dir, deleted after a clean pass")
        q.add_argument("--json-summary", metavar="FILE", help="also write the summary as JSON here")
        q.add_argument("--unimplemented-fail", action="store_true",
                       help="count UNIMPLEMENTED (permessage-deflate not negotiated) as failed")
        q.add_argument("--strict-close", action="store_true",
                       help="also fail cases whose close behaviour is FAILED or UNCLEAN")
        q.add_argument("--timeout", type=int, default=3600,
                       help="overall limit in seconds (default 3600); wstest/client killed, exit 2")
        q.add_argument("--max-failures", type=int, default=40, help="failed cases to detail (40)")
        q.add_argument("--keep", action="store_true", help="keep the temp work dir even on success")
        q.add_argument("-v", "--verbose", action="store_true", help="echo wstest's and the client's output")
    return p


def main(argv):
    command = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1:]
    p = build_parser()
    args = p.parse_args(argv)
    args.command = command
    args.mode_name = args.mode
    if args.mode == "server" and not args.list:
        if command:
            p.error("server mode takes no command after --")
        u = urlparse(args.url or "")
        if u.scheme not in ("ws", "wss") or not u.hostname:
            p.error("server mode needs --url ws://host:port[/path] (got %r)" % args.url)
    if args.mode == "client" and not args.list and not command:
        p.error("client mode needs the client command after --")
    if args.sample_compression < 0:
        p.error("--sample-compression must be >= 0")
    try:
        info, cases, excludes = resolve_selection(args)
        if args.list:
            return list_cases(info)
        runner = run_server if args.mode == "server" else run_client
        workdir, run, error = runner(args, info, cases, excludes)
    except HarnessError as e:
        log("error: %s" % e)
        return 2
    if error:
        log("error: %s" % error)
    try:
        summary = summarize(workdir, info, run, args)
    except (HarnessError, ValueError) as e:
        log("error: %s" % e)
        summary = {"passed": 0, "failed": len(info["cases"])}
        error = error or str(e)
    summary.update(cases_patterns=split_patterns(args.cases) or ["*"],
                   exclude_patterns=split_patterns(args.exclude), sample=info.get("sample"),
                   url=args.url if args.mode == "server" else None,
                   command=args.command or None)
    return finish(summary, workdir, args, error)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
