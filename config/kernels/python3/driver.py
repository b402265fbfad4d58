"""Tandem kernel driver for Python 3 (stdlib only).

Protocol (the same for the python3, bash and node drivers):
  requests  stdin, one JSON object per line:
              {"op":"execute","id":7,"code":"x = 1\\nx + 1"}
              {"op":"complete","id":8,"code":"import o","cursor":8}   cursor counts code points
              {"op":"chdir","id":9,"path":"/workspace"}
            EOF on stdin -> exit 0.  Blank lines are ignored.  Bad JSON, a non-object,
            an unknown op or missing fields -> done/error "ProtocolError", then carry on.
  events    fd 3, one JSON object per line, each line sent with one write():
              {"ev":"ready","language":"python","version":"3.11.2","pid":123}      once, at start
              {"ev":"done","id":7,"status":"ok"|"error"|"interrupted",
               "result":"<repr or null>","error":null|{"name":..,"message":..}}    execute, chdir, errors
              {"ev":"done","id":8,"status":"ok","matches":[..],"cursor_start":7}  complete
  output    the cell writes to fd 1 / fd 2 unbuffered (streamed); tracebacks (driver
            frames stripped) go to stderr; both are flushed before "done" is written.
  SIGINT    interrupts a running cell (KeyboardInterrupt -> status "interrupted", the
            namespace is kept); ignored while idle.

Execution is Jupyter-like: the cell is parsed with ast; if the last statement is an
expression it is evaluated separately and its repr (None -> null, > 64 KiB truncated
with "…") becomes the result.  Top-level await works (each such cell runs in a fresh
asyncio event loop).  SystemExit is reported as an error; the kernel keeps running.
The cell's stdin is /dev/null, so input() raises EOFError instead of eating requests.
"""
import builtins
import io
import json
import os
import _signal as signal    # the C module: `signal` would import enum (~10 ms of start)
import sys
import types
# Imported when first needed, to keep the start fast (asyncio alone costs ~30 ms):
# ast (first execution), asyncio (top-level await), traceback + linecache (errors),
# re/keyword/pkgutil (completion).

CO_COROUTINE = 0x0080       # inspect.CO_COROUTINE

RESULT_LIMIT = 64 * 1024

# Private, non-inheritable copies of the protocol fds, so that neither the cell nor
# the processes it starts can read our requests or forge events.
EVENTS = os.dup(3)
os.close(3)
REQUESTS = os.dup(0)
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)

# Unbuffered UTF-8 stdout/stderr (what `python3 -u` gives), whatever the argv says.
def _unbuffered(fd):
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                            errors="backslashreplace", write_through=True)

sys.stdout = sys.__stdout__ = _unbuffered(1)
sys.stderr = sys.__stderr__ = _unbuffered(2)

# The user namespace is a fresh __main__ module (so pickle etc. find cell classes).
_DRIVER = sys.modules["__main__"]   # keep the driver module (and its globals) alive
MAIN = types.ModuleType("__main__")
MAIN.__dict__["__builtins__"] = builtins
NS = MAIN.__dict__
sys.modules["__main__"] = MAIN
sys.argv = [""]
sys.path[0] = ""            # import from the cwd, like the interactive interpreter

_busy = False               # True only while user code runs: SIGINT raises then
_cells = 0
_modules = None             # cached top-level module names for `import` completion


def on_sigint(signum, frame):
    if _busy:
        raise KeyboardInterrupt


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
        os._exit(1)              # the server went away


def flush_output():
    for f in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            f.flush()
        except Exception:
            pass


def done(rid, status="ok", result=None, error=None, **extra):
    flush_output()
    msg = {"ev": "done", "id": rid, "status": status}
    msg.update(extra or {"result": result, "error": error})
    emit(msg)


def err_info(e):
    return {"name": type(e).__name__, "message": str(e)}


# Cell sources, handed to linecache when a traceback is printed (importing linecache costs
# milliseconds at start).
_sources = {}


def print_traceback(e):
    # Drop the leading frames that are not the cell's (driver, ast, asyncio); for a
    # SyntaxError none are left, which prints it the way the interpreter does.
    import linecache
    import traceback
    linecache.cache.update(_sources)
    tb = e.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
        tb = tb.tb_next
    try:
        sys.stderr.write("".join(traceback.format_exception(type(e), e, tb)))
    except Exception:
        pass


def run_cell(code, filename):
    """Execute `code` in NS; return the value of a trailing expression (or None)."""
    import ast
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    value = None
    for node, mode in ((tree, "exec"), (last, "eval")):
        if node is None:
            continue
        co = compile(node, filename, mode, flags=flags)
        value = eval(co, NS)
        if co.co_flags & CO_COROUTINE:
            import asyncio
            value = asyncio.run(value)
    return value


def truncate(text):
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= RESULT_LIMIT:
        return text
    return data[:RESULT_LIMIT - 3].decode("utf-8", "ignore") + "\u2026"


def execute(rid, code):
    global _busy, _cells
    _cells += 1
    filename = "<cell-%d>" % _cells
    _sources[filename] = (len(code), None, code.splitlines(True), filename)
    signal.signal(signal.SIGINT, on_sigint)   # in case the previous cell replaced it
    try:
        try:
            _busy = True
            value = run_cell(code, filename)
            result = None if value is None else truncate(repr(value))
        finally:
            _busy = False
    except KeyboardInterrupt as e:
        print_traceback(e)
        return done(rid, "interrupted", error={"name": "KeyboardInterrupt", "message": str(e)})
    except BaseException as e:   # SystemExit too: report it, keep the kernel alive
        print_traceback(e)
        return done(rid, "error", error=err_info(e))
    done(rid, "ok", result=result)


def module_names():
    global _modules
    if _modules is None:
        import pkgutil
        names = set(sys.builtin_module_names)
        try:
            names.update(m.name for m in pkgutil.iter_modules())
        except Exception:
            pass
        _modules = sorted(names)
    return _modules


def complete(code, cursor):
    import keyword
    import re
    text = code[:cursor]
    token = re.search(r"[\w.]*$", text).group()
    if "." in token:
        expr, _, prefix = token.rpartition(".")
        obj, parts = None, expr.split(".")
        try:   # walk attribute names only, never eval arbitrary code
            obj = NS[parts[0]] if parts[0] in NS else getattr(builtins, parts[0])
            for p in parts[1:]:
                obj = getattr(obj, p)
            names = dir(obj)
        except Exception:
            names = []
    else:
        prefix = token
        names = list(NS) + dir(builtins) + keyword.kwlist
        line = text.rsplit("\n", 1)[-1]
        if re.match(r"\s*(import|from)\s+\w*$", line):
            names += module_names()
    matches = sorted({n for n in names if n.startswith(prefix)
                      and (prefix.startswith("_") or not n.startswith("_"))})
    return matches[:1000], cursor - len(prefix)


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
    if op == "execute":
        code = req.get("code")
        if not isinstance(code, str):
            return protocol_error(rid, "execute needs a string 'code'")
        execute(rid, code)
    elif op == "complete":
        code, cursor = req.get("code"), req.get("cursor")
        if not isinstance(code, str):
            return protocol_error(rid, "complete needs a string 'code'")
        if not isinstance(cursor, int) or isinstance(cursor, bool):
            cursor = len(code)
        cursor = max(0, min(cursor, len(code)))
        try:
            matches, start = complete(code, cursor)
        except Exception:
            matches, start = [], cursor
        done(rid, "ok", matches=matches, cursor_start=start)
    elif op == "chdir":
        path = req.get("path")
        if not isinstance(path, str):
            return protocol_error(rid, "chdir needs a string 'path'")
        try:
            os.chdir(path)
        except OSError as e:
            return done(rid, "error", error={"name": type(e).__name__, "message": "%s: %s" % (e.strerror, path)})
        done(rid, "ok")
    else:
        protocol_error(rid, "unknown op %r" % (op,))


def requests():
    """Yield request lines from the private stdin copy until EOF."""
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


def main():
    signal.signal(signal.SIGINT, on_sigint)
    emit({"ev": "ready", "language": "python", "version": sys.version.split()[0],
          "pid": os.getpid()})
    for line in requests():
        if line.strip():
            try:
                handle(line.decode("utf-8", "replace"))
            except KeyboardInterrupt:   # a SIGINT racing the end of a cell
                pass
    flush_output()
    os._exit(0)     # don't wait for threads the cells may have left running


if __name__ == "__main__":
    main()
