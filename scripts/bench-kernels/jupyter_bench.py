#!/usr/bin/env python3
"""Jupyter side of scripts/bench-kernels.sh: the same kernel metrics as `tandem kernel bench`,
measured against a local ipykernel through jupyter_client.

usage: python jupyter_bench.py [--rounds N] [--execs M] [--prints P] [--warmup W] [--json]

Run it with the python of a venv that has ipykernel and jupyter_client. The kernel is launched
from a kernelspec written to a private temp dir whose argv is
[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], so it is this venv's
ipykernel whatever else is installed; before measuring, the kernel's sys.prefix is compared
with ours and the run stops if they differ. Transport: the default TCP on 127.0.0.1.

Metrics (one JSON line each with --json, shape of tandem's:
{"system":"jupyter","metric":NAME,"samples_ms":[...]}):
  cold_start_first_result  per round: KernelManager.start_kernel() -> client.start_channels()
                           -> wait_for_ready() -> execute("1+1") -> its execute_reply on shell.
                           W warm-up kernels (default 1, like tandem's discarded first start) are
                           started first and not recorded.
  exec_roundtrip           on one warm kernel (the last round's), M executes of 1+1, each timed
                           to its execute_reply (matched by parent_header.msg_id; the extra
                           kernel_info_replies of wait_for_ready are skipped). After each reply,
                           iopub is drained up to that execute's `idle` (untimed), so every
                           execute starts on an idle kernel with empty queues.
  print_latency            on the warm kernel, P executes (default 50) of
                           `import time; print(time.time_ns())`: time.time_ns() in the client
                           right after get_iopub_msg() returns the `stream` message, minus the
                           printed value (both CLOCK_REALTIME on this host), in ms.
  shutdown                 km.shutdown_kernel(now=False) per kernel (graceful), in ms.
Jupyter has no warm pool, so there is no pool_attach_first_result.
All waits are blocking get_shell_msg/get_iopub_msg calls with a timeout (zmq poll), no spinning.
Progress and the kernel check go to stderr; stdout has only the results.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from queue import Empty

TIMEOUT = 60.0  # seconds for any single wait; a kernel that takes longer is a failure


def pct(sorted_vals, q):
    """Linear-interpolated percentile (q in 0..100) of a sorted list."""
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def wait_reply(kc, msg_id):
    """Block until the shell reply whose parent is msg_id; skip anything else (stray
    kernel_info_replies from wait_for_ready)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no shell reply for {msg_id}")
        msg = kc.get_shell_msg(timeout=left)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def drain_until_idle(kc, msg_id):
    """Consume iopub messages until the `idle` status of msg_id; returns them."""
    got = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no idle status for {msg_id}")
        msg = kc.get_iopub_msg(timeout=left)
        got.append(msg)
        if (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"
                and msg["parent_header"].get("msg_id") == msg_id):
            return got


def check_ok(reply, what):
    if reply["content"].get("status") != "ok":
        raise RuntimeError(f"{what}: {reply['content']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10, help="cold starts measured (default 10)")
    ap.add_argument("--execs", type=int, default=200, help="warm 1+1 round trips (default 200)")
    ap.add_argument("--prints", type=int, default=50, help="print latency samples (default 50)")
    ap.add_argument("--warmup", type=int, default=1, help="unrecorded cold starts first (default 1)")
    ap.add_argument("--json", action="store_true", help="one JSON object per metric")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")

    tmp = tempfile.TemporaryDirectory(prefix="jupyter-bench-")
    # Connection files go to our temp dir, not ~/.local/share/jupyter/runtime.
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(tmp.name, "runtime")
    # IPython profile and history in the venv (created once, then reused like a user's ~/.ipython),
    # so the first kernel of every run does not pay for creating a profile.
    os.environ.setdefault("IPYTHONDIR", os.path.join(sys.prefix, "share", "bench-ipython"))

    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    import ipykernel
    import jupyter_client

    spec_dir = os.path.join(tmp.name, "kernels", "bench-venv-python3")
    os.makedirs(spec_dir)
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "bench venv python3",
            "language": "python",
        }, f)
    ksm = KernelSpecManager(kernel_dirs=[os.path.join(tmp.name, "kernels")])
    spec = ksm.get_kernel_spec("bench-venv-python3")
    assert spec.argv[0] == sys.executable, spec.argv
    log(f"jupyter_bench: python {sys.version.split()[0]} at {sys.executable}, "
        f"ipykernel {ipykernel.__version__}, jupyter_client {jupyter_client.__version__}, "
        f"kernel argv {spec.argv}")

    def new_km():
        return KernelManager(kernel_name="bench-venv-python3", kernel_spec_manager=ksm)

    # The kernels' stderr (ipykernel's "running over TCP without encryption" warning, tracebacks)
    # goes to a file, shown only when the run fails.
    kernel_log_path = os.path.join(tmp.name, "kernel-stderr.log")
    kernel_log = open(kernel_log_path, "wb")

    def cold_start():
        """Start a kernel and run 1+1; returns (km, kc, ms from start_kernel to execute_reply)."""
        km = new_km()
        t0 = time.perf_counter()
        km.start_kernel(stderr=kernel_log)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=TIMEOUT)
        msg_id = kc.execute("1+1")
        reply = wait_reply(kc, msg_id)
        ms = (time.perf_counter() - t0) * 1e3
        check_ok(reply, "cold 1+1")
        drain_until_idle(kc, msg_id)  # untimed: leave iopub empty
        return km, kc, ms

    def shutdown(km, kc):
        kc.stop_channels()
        t0 = time.perf_counter()
        km.shutdown_kernel(now=False)
        return (time.perf_counter() - t0) * 1e3

    cold, shut, rtt, prints = [], [], [], []
    live = []  # (km, kc) to clean up on error
    try:
        for i in range(args.warmup):
            km, kc, ms = cold_start()
            live.append((km, kc))
            log(f"  warm-up kernel {i + 1}: {ms:.1f} ms (not recorded)")
            shutdown(km, kc)
            live.pop()
        for r in range(args.rounds):
            km, kc, ms = cold_start()
            live.append((km, kc))
            cold.append(ms)
            log(f"  cold start {r + 1}/{args.rounds}: {ms:.1f} ms")
            if r < args.rounds - 1:
                shut.append(shutdown(km, kc))
                live.pop()

        # Warm kernel: the last round's. First check it is this venv's ipykernel (untimed).
        km, kc = live[-1]
        msg_id = kc.execute("import sys, time, ipykernel\n"
                            "print(sys.prefix + '|' + sys.executable + '|' + ipykernel.__file__)")
        check_ok(wait_reply(kc, msg_id), "kernel check")
        out = "".join(m["content"]["text"] for m in drain_until_idle(kc, msg_id)
                      if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
        k_prefix, k_exe, k_ipk = out.strip().split("|")
        log(f"  kernel: sys.prefix={k_prefix} sys.executable={k_exe} ipykernel={k_ipk}")
        if os.path.realpath(k_prefix) != os.path.realpath(sys.prefix):
            raise RuntimeError(f"kernel runs in {k_prefix}, not this venv {sys.prefix}")

        for _ in range(args.execs):
            t0 = time.perf_counter()
            msg_id = kc.execute("1+1")
            reply = wait_reply(kc, msg_id)
            rtt.append((time.perf_counter() - t0) * 1e3)
            check_ok(reply, "1+1")
            drain_until_idle(kc, msg_id)

        for _ in range(args.prints):
            msg_id = kc.execute("import time; print(time.time_ns())")
            deadline = time.monotonic() + TIMEOUT
            while True:
                msg = kc.get_iopub_msg(timeout=max(0.0, deadline - time.monotonic()))
                now = time.time_ns()
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                    for line in msg["content"]["text"].split("\n"):
                        if line.strip().isdigit():
                            prints.append((now - int(line)) / 1e6)
                if (msg["msg_type"] == "status"
                        and msg["content"].get("execution_state") == "idle"):
                    break
            check_ok(wait_reply(kc, msg_id), "print")

        shut.append(shutdown(km, kc))
        live.pop()
    except BaseException:
        kernel_log.flush()
        with open(kernel_log_path, errors="replace") as f:
            tail = f.read()[-4000:]
        if tail.strip():
            log("kernel stderr (last 4000 chars):\n" + tail)
        raise
    finally:
        for km, kc in live:
            try:
                kc.stop_channels()
                km.shutdown_kernel(now=True)
            except Exception as e:  # noqa: BLE001 - best-effort cleanup
                log(f"cleanup: {e}")
        kernel_log.close()
        tmp.cleanup()

    results = [("cold_start_first_result", cold), ("exec_roundtrip", rtt),
               ("print_latency", prints), ("shutdown", shut)]
    for name, samples in results:
        if args.json:
            print(json.dumps({"system": "jupyter", "metric": name,
                              "samples_ms": [round(v, 3) for v in samples]},
                             separators=(",", ":")), flush=True)
        else:
            s = sorted(samples)
            print(f"{name}: median {pct(s, 50):.3f} ms, p10 {pct(s, 10):.3f}, "
                  f"p90 {pct(s, 90):.3f}, n {len(s)}")


if __name__ == "__main__":
    try:
        main()
    except (Empty, TimeoutError, RuntimeError) as e:
        log(f"jupyter_bench: failed: {type(e).__name__}: {e}")
        sys.exit(1)
