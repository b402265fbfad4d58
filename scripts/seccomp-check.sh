#!/usr/bin/env bash
# seccomp-check.sh: prove that config/seccomp/tandem.json works with crun.
#
# Builds a throwaway OCI bundle (the kernel container of Appendix A in
# shared/research/containers.md: read-only skeleton root, /usr and /etc bound
# read-only, user namespace 0 -> 100000, uid 1000, no capabilities,
# noNewPrivileges, catatonit as PID 1, all namespaces including network,
# memory/pids/cpu limits) and runs a Python check program in it twice:
#
#   pass "json": linux.seccomp = the profile, compiled by crun/libseccomp;
#                crun leaves the compiled filter in /run/crun/<id>/seccomp.bpf,
#                which is copied;
#   pass "bpf":  no linux.seccomp, the copied filter given as the crun
#                annotation run.oci.seccomp_bpf_data (what the server does).
#
# Prints one line per check and exits 0 only if every check passed.
# Needs root, crun, catatonit, unshare and /usr/bin/python3.
# Usage: bash scripts/seccomp-check.sh [profile.json]
#        SECCOMP_BPF_OUT=/path/tandem.bpf bash scripts/seccomp-check.sh   # also keep the BPF

set -u -o pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=${1:-$ROOT_DIR/config/seccomp/tandem.json}
PY=/usr/bin/python3
CG_PARENT=tandem-seccomp-check
RUNTIME_ROOT=/run/crun
TIMEOUT_S=${SECCOMP_CHECK_TIMEOUT:-90}

die() { echo "seccomp-check: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root"
for t in crun unshare "$PY" /usr/bin/catatonit; do
  command -v "$t" >/dev/null 2>&1 || die "missing $t"
done
[ -r "$PROFILE" ] || die "no profile at $PROFILE"

WORK=$(mktemp -d /tmp/tandem-seccomp-check.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
IDS=()
LISTENER_PID=
PASSED=0
FAILED=0

cleanup() {
  local id
  for id in "${IDS[@]}"; do
    crun --root "$RUNTIME_ROOT" delete -f "$id" >/dev/null 2>&1 || true
    # crun removes the leaf cgroups on delete; remove leftovers and the parents.
    rmdir /sys/fs/cgroup/*/"$CG_PARENT/$id" /sys/fs/cgroup/"$CG_PARENT/$id" 2>/dev/null || true
  done
  rmdir /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT" 2>/dev/null || true
  if [ -n "$LISTENER_PID" ]; then kill "$LISTENER_PID" 2>/dev/null; wait "$LISTENER_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

report() { # report ok|fail label detail
  if [ "$1" = ok ]; then PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$2"
  else FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$2"; fi
}

# crun create/run refuse "hybrid" cgroups (v1 controllers + a cgroup2 mount at
# /sys/fs/cgroup/unified with hugetlb on it): run them in a private mount
# namespace without that mount (research §2, fix A). Other commands run as is.
crun_ns() {
  if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
    unshare -m --propagation slave sh -c 'umount /sys/fs/cgroup/unified && exec crun "$@"' sh --root "$RUNTIME_ROOT" "$@"
  else
    crun --root "$RUNTIME_ROOT" "$@"
  fi
}

# ---------------------------------------------------------------- the bundle
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{usr,etc,proc,dev,sys,tmp,workspace,opt/kernel}
ln -s usr/bin "$ROOTFS/bin"; ln -s usr/sbin "$ROOTFS/sbin"
ln -s usr/lib "$ROOTFS/lib"; ln -s usr/lib64 "$ROOTFS/lib64"
mkdir -p "$WORK/kernel" "$WORK/ws-json" "$WORK/ws-bpf"
chown 101000:101000 "$WORK/ws-json" "$WORK/ws-bpf"

# A listener on the host's loopback: the container must not reach it.
"$PY" - "$WORK/port" <<'PY' &
import socket, sys, signal
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    c, _ = s.accept(); c.close()
PY
LISTENER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
PORT=$(cat "$WORK/port" 2>/dev/null || echo 0)
if "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()' "$PORT" 2>/dev/null; then
  report ok "host: listener on 127.0.0.1:$PORT accepts connections from the host"
else
  report fail "host: listener on 127.0.0.1:$PORT not reachable from the host"
fi

# ------------------------------------------------- checks run in the container
cat > "$WORK/checks.py" <<'PY'
import ctypes, errno, multiprocessing, os, platform, socket, subprocess, sys, threading

PORT = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {
    "x86_64": dict(clone=56, unshare=272, setns=308, mount=165, keyctl=250, bpf=321,
                   perf_event_open=298, ptrace=101, clone3=435, io_uring_setup=425,
                   personality=135, get_mempolicy=239),
    "aarch64": dict(clone=220, unshare=97, setns=268, mount=40, keyctl=219, bpf=280,
                    perf_event_open=241, ptrace=117, clone3=435, io_uring_setup=425,
                    personality=92, get_mempolicy=236),
}[platform.machine()]
CLONE_NEWNS, CLONE_NEWUSER, SIGCHLD = 0x00020000, 0x10000000, 17

def out(ok, name, detail):
    print(("ok   " if ok else "FAIL ") + name + ": " + detail, flush=True)

def check(name):
    def deco(fn):
        try:
            ok, detail = fn()
        except Exception as e:  # a crash is a failed check, not a dead run
            ok, detail = False, "exception %r" % (e,)
        out(ok, name, detail)
        return fn
    return deco

def raw(name, *args):
    cargs = [a if isinstance(a, (bytes, type(None))) else ctypes.c_long(a) for a in args]
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(NR[name]), *cargs)
    return r, ctypes.get_errno()

def denied(name, want, *args):
    r, e = raw(name, *args)
    if name == "clone" and r == 0:  # a clone that got through: this is the child
        os._exit(0)
    if name == "clone" and r > 0:
        os.waitpid(r, 0)
    got = "ret=%d errno=%s" % (r, errno.errorcode.get(e, e))
    return r == -1 and e in want, got

def status():
    return dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())

@check("seccomp filter active (Seccomp: 2)")
def _():
    v = status()["Seccomp"].strip()
    return v == "2", "Seccomp: " + v

@check("no_new_privs, no capabilities, uid 1000")
def _():
    s = status()
    nnp, eff, bnd = s["NoNewPrivs"].strip(), s["CapEff"].strip(), s["CapBnd"].strip()
    ok = nnp == "1" and int(eff, 16) == 0 and int(bnd, 16) == 0 and os.getuid() == 1000
    return ok, "NoNewPrivs=%s CapEff=%s CapBnd=%s uid=%d" % (nnp, eff, bnd, os.getuid())

@check("threads")
def _():
    res = []
    lock = threading.Lock()
    def work(i):
        with lock:
            res.append(i * i)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in ts]; [t.join() for t in ts]
    return sorted(res) == [i * i for i in range(8)], "8 threads ran"

@check("os.fork")
def _():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, st = os.waitpid(pid, 0)
    return os.WIFEXITED(st) and os.WEXITSTATUS(st) == 7, "child exit status %d" % os.WEXITSTATUS(st)

@check("subprocess /bin/true and a shell pipeline")
def _():
    rc = subprocess.run(["/bin/true"]).returncode
    o = subprocess.run(["/bin/sh", "-c", "echo hi | tr a-z A-Z"], capture_output=True, text=True).stdout
    return rc == 0 and o == "HI\n", "true rc=%d, pipeline %r" % (rc, o)

def square(x):
    return x * x

@check("multiprocessing Pool(2)")
def _():
    with multiprocessing.Pool(2) as p:
        r = p.map(square, range(10))
    return r == [x * x for x in range(10)], "map -> %r" % (r[:4],)

def sh(cmd, timeout=120):
    r = subprocess.run(["/bin/bash", "-c", cmd], capture_output=True, text=True, timeout=timeout)
    last = (r.stdout.strip().splitlines() or [""])[-1]
    return r.returncode == 0, "rc=%d %s%s" % (r.returncode, last[:60], (" stderr: " + r.stderr.strip()[-200:]) if r.returncode else "")

TOOLS = [
    ("bash + coreutils", "/bin/bash",
     "set -e; d=$(mktemp -d); cd $d; seq 1000 | sort -rn | head -3 > a; cp a b; cmp a b; "
     "ln -s a c; stat -c %s c >/dev/null; tar cf t.tar a b; gzip -9 t.tar; ls | wc -l"),
    ("git init/commit/log", "/usr/bin/git",
     "set -e; d=$(mktemp -d); cd $d; git init -q; echo x > f; git add f; "
     "git -c user.name=t -c user.email=t@t commit -qm x; git log --oneline | wc -l"),
    ("gcc compile + run (pthreads)", "/usr/bin/gcc",
     "set -e; d=$(mktemp -d); cd $d; printf '%s\\n' '#include <pthread.h>' '#include <stdio.h>' "
     "'static void *f(void *a){return a;}' "
     "'int main(void){pthread_t t; void *r; pthread_create(&t,0,f,(void*)42); pthread_join(t,&r); printf(\"%ld\\n\",(long)r); return 0;}' > t.c; "
     "gcc -O1 -pthread -o t t.c; ./t"),
    ("node (fs, child_process, worker_threads)", "/usr/bin/node",
     "node -e \"const fs=require('fs'),cp=require('child_process'),{Worker}=require('worker_threads');"
     "fs.writeFileSync('/tmp/n.txt','ok');cp.execFileSync('/bin/true');"
     "new Worker('require(\\'worker_threads\\').parentPort.postMessage(fs=1)',{eval:true})"
     ".on('message',m=>{console.log('worker',m,fs.readFileSync('/tmp/n.txt','utf8'));process.exit(0)})\""),
    ("pip", "/usr/lib/python3/dist-packages/pip", "python3 -m pip --version --disable-pip-version-check"),
]
for label, exe, cmd in TOOLS:
    if not os.path.exists(exe):
        print("info %s: %s not installed, not checked" % (label, exe), flush=True)
        continue
    check(label)(lambda cmd=cmd: sh(cmd))

# clone first: once an unshare(CLONE_NEWUSER) has got through (with a broken
# profile), the kernel itself refuses a nested user namespace with EPERM.
@check("clone(CLONE_NEWUSER) -> EPERM")
def _(): return denied("clone", {errno.EPERM}, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)

@check("unshare(CLONE_NEWUSER|CLONE_NEWNS) -> EPERM")
def _(): return denied("unshare", {errno.EPERM}, CLONE_NEWUSER | CLONE_NEWNS)

@check("setns -> EPERM")
def _(): return denied("setns", {errno.EPERM}, 0, 0)

@check("mount tmpfs -> EPERM")
def _(): return denied("mount", {errno.EPERM}, b"none", b"/tmp", b"tmpfs", 0, None)

@check("keyctl -> EPERM")
def _(): return denied("keyctl", {errno.EPERM}, 0, -3, 0)  # KEYCTL_GET_KEYRING_ID, session

@check("bpf -> EPERM")
def _(): return denied("bpf", {errno.EPERM}, 0, None, 0)

@check("perf_event_open -> EPERM")
def _(): return denied("perf_event_open", {errno.EPERM}, None, 0, -1, -1, 0)

@check("ptrace(PTRACE_TRACEME) -> EPERM")
def _(): return denied("ptrace", {errno.EPERM}, 0, 0, 0, 0)

@check("clone3 -> ENOSYS")
def _(): return denied("clone3", {errno.ENOSYS}, None, 0)

@check("io_uring_setup -> EPERM or ENOSYS")
def _(): return denied("io_uring_setup", {errno.EPERM, errno.ENOSYS}, 1, None)

@check("personality(ADDR_NO_RANDOMIZE) -> ENOSYS (default action)")
def _(): return denied("personality", {errno.ENOSYS}, 0x0040000)

@check("get_mempolicy (not listed) -> ENOSYS (default action)")
def _(): return denied("get_mempolicy", {errno.ENOSYS}, None, None, 0, None, 0)

@check("connect to the host's 127.0.0.1:%d -> ECONNREFUSED" % PORT)
def _():
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", PORT))
        return False, "connected"
    except ConnectionRefusedError:
        return True, "ECONNREFUSED"
    finally:
        s.close()

print("END", flush=True)
PY

# $1 mode (json|bpf)  $2 id  $3 workspace  $4 bundle  [$5 bpf file]
make_config() {
  "$PY" - "$@" "$PROFILE" "$WORK/kernel" "$ROOTFS" "$WORK/checks.py" "$PORT" <<'PY'
import base64, json, sys
mode, cid, ws, bundle = sys.argv[1:5]
bpf = sys.argv[5] if mode == "bpf" else None
profile, kernel_dir, rootfs, checks, port = sys.argv[-5:]
ro = ["rbind", "ro", "nosuid", "nodev"]
cfg = {
  "ociVersion": "1.0.2",
  "process": {
    "terminal": False,
    "user": {"uid": 1000, "gid": 1000, "additionalGids": []},
    "args": ["/usr/bin/catatonit", "--", "/usr/bin/python3", "-c", open(checks).read(), port],
    "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/workspace", "LANG=C.UTF-8",
            "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"],
    "cwd": "/workspace",
    "capabilities": {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],
    "noNewPrivileges": True,
  },
  "root": {"path": rootfs, "readonly": True},
  "hostname": "kernel",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=16m"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/usr", "type": "bind", "source": "/usr", "options": ro},
    {"destination": "/etc", "type": "bind", "source": "/etc", "options": ro},
    {"destination": "/workspace", "type": "bind", "source": ws, "options": ["rbind", "rw", "nosuid", "nodev"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=64m"]},
    {"destination": "/opt/kernel", "type": "bind", "source": kernel_dir, "options": ro},
  ],
  "linux": {
    "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup", "user")],
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "cgroupsPath": "/tandem-seccomp-check/" + cid,
    "resources": {
      "devices": [{"allow": False, "access": "rwm"}],
      "memory": {"limit": 268435456, "swap": 268435456},
      "pids": {"limit": 64},
      "cpu": {"quota": 50000, "period": 100000},
    },
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                    "/sys/firmware", "/sys/devices/virtual/powercap"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
  },
}
if mode == "json":
    cfg["linux"]["seccomp"] = json.load(open(profile))
else:
    cfg["annotations"] = {"run.oci.seccomp_bpf_data": base64.b64encode(open(bpf, "rb").read()).decode()}
json.dump(cfg, open(bundle + "/config.json", "w"), indent=1)
PY
}

# $1 mode (json|bpf): create, (copy the BPF), start, wait, report, delete.
run_pass() {
  local mode=$1 id="$CG_PARENT-$$-$1" bundle="$WORK/bundle-$1" st i line
  mkdir -p "$bundle"
  IDS+=("$id")
  if ! make_config "$mode" "$id" "$WORK/ws-$mode" "$bundle" "$WORK/tandem.bpf"; then
    report fail "[$mode] write config.json"; return
  fi
  # stdin is a pipe and stdout/stderr are files of our own: crun chowns the
  # stdio it is given to the container user, so never hand it /dev/null.
  if ! : | crun_ns create --bundle "$bundle" "$id" >"$WORK/out-$mode" 2>"$WORK/err-$mode"; then
    report fail "[$mode] crun create: $(tr '\n' ' ' <"$WORK/err-$mode")"; return
  fi
  report ok "[$mode] crun create ($( [ "$mode" = json ] && echo 'linux.seccomp = profile JSON' || echo 'annotation run.oci.seccomp_bpf_data, no linux.seccomp'))"
  if [ "$mode" = json ]; then
    local f="$RUNTIME_ROOT/$id/seccomp.bpf"
    if [ -s "$f" ] && cp "$f" "$WORK/tandem.bpf"; then
      report ok "[$mode] compiled filter written by crun: $f, $(stat -c %s "$f") bytes ($(( $(stat -c %s "$f") / 8 )) BPF instructions)"
    else
      report fail "[$mode] no compiled filter at $f"
    fi
  fi
  if ! crun --root "$RUNTIME_ROOT" start "$id" 2>>"$WORK/err-$mode"; then
    report fail "[$mode] crun start: $(tr '\n' ' ' <"$WORK/err-$mode")"; return
  fi
  for ((i = 0; i < TIMEOUT_S * 10; i++)); do
    st=$(crun --root "$RUNTIME_ROOT" state "$id" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null)
    [ "$st" = stopped ] || [ -z "$st" ] && break
    sleep 0.1
  done
  [ "$st" = stopped ] || [ -z "$st" ] || report fail "[$mode] container still $st after ${TIMEOUT_S}s"
  while IFS= read -r line; do
    case $line in
      "ok   "*) report ok "[$mode] ${line#ok   }" ;;
      "FAIL "*) report fail "[$mode] ${line#FAIL }" ;;
      END) ;;
      *) printf '      [%s] %s\n' "$mode" "$line" ;;
    esac
  done <"$WORK/out-$mode"
  if grep -qx END "$WORK/out-$mode"; then
    report ok "[$mode] check program ran to the end"
  else
    report fail "[$mode] check program did not finish; stderr: $(tail -n 5 "$WORK/err-$mode" | tr '\n' ' ')"
  fi
  crun --root "$RUNTIME_ROOT" delete -f "$id" >/dev/null 2>&1 \
    && report ok "[$mode] crun delete -f" || report fail "[$mode] crun delete -f"
}

echo "profile: $PROFILE"
run_pass json
if [ -s "$WORK/tandem.bpf" ]; then
  run_pass bpf
else
  report fail "[bpf] skipped: no compiled filter from the json pass"
fi

# SECCOMP_BPF_OUT=<file>: keep the filter crun compiled (only if every check passed).
if [ -n "${SECCOMP_BPF_OUT:-}" ] && [ "$FAILED" = 0 ]; then
  if cp "$WORK/tandem.bpf" "$SECCOMP_BPF_OUT"; then
    echo "compiled filter saved to $SECCOMP_BPF_OUT"
  else
    report fail "save compiled filter to $SECCOMP_BPF_OUT"
  fi
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
