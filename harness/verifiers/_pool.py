"""A small pool of worker processes with a hard time limit per call: on the deadline the worker is killed and replaced.

Why processes, and why kill: sympy and friends can run for minutes (``10^{10^{10}}``, a pathological ``simplify``) and
cannot be interrupted from another thread; ``signal.alarm`` only works in a main thread, and the runner scores on a
background thread. So the limit is enforced from outside: the caller waits on the worker's pipe until the deadline,
then sends SIGKILL, reaps the process and starts a fresh one for the next call. Nothing the worker does can make the
caller wait more than the deadline plus the time to kill a process.

Start method: ``forkserver``. A plain ``fork`` copies whatever locks other threads of the caller hold at that moment
(llama.cpp threads, the logging lock, the import lock), which can deadlock the child; ``forkserver`` forks workers
from a clean single-threaded server process instead. Modules named in ``preload`` are imported by the server when
this pool is the one that starts it (so a replacement worker is ready in milliseconds), and imported again by every
worker before it reports ready, so a server started by someone else only costs time once per worker, never a false
timeout: the clock of a call starts when the call is handed to a ready worker.

No re-import of ``__main__``: multiprocessing's spawn and forkserver children normally re-run the caller's main
script (as ``__mp_main__``) so that functions defined there can be unpickled. A pool call is a module-level function
of an importable module, so workers never need it, and re-running it is what breaks an unguarded script (its
top-level ``verify(...)`` runs again in the worker and tries to start a pool while bootstrapping) and ``python -``
(the worker tries to run a file called ``<stdin>``). Workers are therefore launched with the main-module entries
removed from the data multiprocessing hands the child (``_NoMainProcess``); scripts, ``python -``, ``python -c`` and
notebooks all work without an ``if __name__ == "__main__":`` guard. On a Python whose multiprocessing internals
differ from the ones this was written against (3.10-3.13), the stock launcher is used and a guard is needed again.

``preload`` entries are module names, or ``module:function`` for a warm-up function each worker calls once before it
reports ready (e.g. loading a parser), so that cost never counts against a call's time limit.

Generic: a call is ``fn(*args)`` with ``fn`` a module-level function (pickled by reference) and picklable args and
result. Other verifiers get their own pool with ``shared_pool(name, ...)``. Safe to use from several threads: each
``map`` checks workers out of a shared idle list. Workers are daemonic, die with the caller (EOF on their pipe),
and are shut down at interpreter exit.
"""
from __future__ import annotations

import atexit
import importlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable, Sequence

OK = "ok"
TIMEOUT = "timeout"
ERROR = "error"  # the function raised (message in .error)
CRASHED = "crashed"  # the worker died without answering (segfault, out of memory, killed from outside)


@dataclass(frozen=True)
class Outcome:
    status: str
    value: Any = None
    error: str | None = None
    elapsed: float = 0.0  # seconds from hand-over to the worker until the answer (or the kill)

    @property
    def ok(self) -> bool:
        return self.status == OK


def _describe_exception(e: BaseException) -> str:
    # str() of some sympy objects inside exception messages can itself take forever; keep to the type and short args.
    parts = [a for a in getattr(e, "args", ()) if isinstance(a, (str, int, float))]
    msg = "; ".join(str(a)[:200] for a in parts[:2])
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _worker_main(conn, preload: tuple[str, ...], memory_limit_mb: int | None) -> None:
    # Ctrl-C reaches the whole process group; the caller decides what happens to its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_limit_mb:
        try:
            import resource

            lim = int(memory_limit_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        except (ImportError, ValueError, OSError):
            pass
    for name in preload:
        mod, _, func = name.partition(":")
        m = importlib.import_module(mod)
        if func:
            getattr(m, func)()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the caller is gone
        if msg is None:
            return
        fn, args = msg
        try:
            value = fn(*args)
        except BaseException as e:  # noqa: BLE001 - MemoryError / RecursionError must come back as an outcome too
            reply = (ERROR, _describe_exception(e))
        else:
            reply = (OK, value)
        try:
            conn.send(reply)
        except Exception as e:  # an unpicklable result
            conn.send((ERROR, "result not picklable: " + _describe_exception(e)))


class _Worker:
    __slots__ = ("proc", "conn", "tasks", "slot")

    def __init__(self, proc, conn, slot: int):
        self.proc, self.conn, self.tasks, self.slot = proc, conn, 0, slot

    def kill(self) -> None:
        try:
            if self.proc.pid is not None and self.proc.is_alive():
                os.kill(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, OSError, AssertionError):
            pass
        try:
            self.proc.join(timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.conn.close()
        except OSError:
            pass

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.join(timeout=1)
        except (OSError, ValueError, AssertionError):
            pass
        self.kill()


def _no_main_process_class():
    """A ForkServerProcess whose launch leaves ``__main__`` out of the child's preparation data, or None when this
    Python's multiprocessing does not have the layout that override copies (then the stock class is used)."""
    try:
        import io

        from multiprocessing import context, forkserver, popen_forkserver, spawn, util
        from multiprocessing.context import reduction, set_spawning_popen
    except ImportError:
        return None
    if not (hasattr(popen_forkserver, "Popen") and hasattr(forkserver, "connect_to_new_process")
            and hasattr(forkserver, "read_signed") and hasattr(context, "ForkServerProcess")
            and (3, 10) <= sys.version_info[:2] <= (3, 13)):
        return None

    class _NoMainPopen(popen_forkserver.Popen):
        def _launch(self, process_obj):
            # CPython's popen_forkserver.Popen._launch (3.10-3.13), with the main-module entries dropped.
            prep_data = spawn.get_preparation_data(process_obj._name)
            prep_data.pop("init_main_from_name", None)
            prep_data.pop("init_main_from_path", None)
            buf = io.BytesIO()
            set_spawning_popen(self)
            try:
                reduction.dump(prep_data, buf)
                reduction.dump(process_obj, buf)
            finally:
                set_spawning_popen(None)
            self.sentinel, w = forkserver.connect_to_new_process(self._fds)
            _parent_w = os.dup(w)
            self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
            with open(w, "wb", closefd=True) as f:
                f.write(buf.getbuffer())
            self.pid = forkserver.read_signed(self.sentinel)

    class _NoMainProcess(context.ForkServerProcess):
        @staticmethod
        def _Popen(process_obj):
            return _NoMainPopen(process_obj)

    # Pickled by reference into the child: it must be reachable as a module attribute.
    _NoMainProcess.__qualname__ = _NoMainProcess.__name__ = "_NoMainProcess"
    return _NoMainProcess


_NoMainProcess = _no_main_process_class()


class WorkerPool:
    def __init__(self, size: int | None = None, *, preload: Sequence[str] = (), max_tasks_per_worker: int = 2000,
                 memory_limit_mb: int | None = None, start_timeout: float = 120.0, start_method: str = "forkserver"):
        if size is None:
            try:
                size = len(os.sched_getaffinity(0))
            except AttributeError:
                size = os.cpu_count() or 1
        self.size = max(1, int(size))
        self.preload = tuple(preload)
        # Recycling bounds the memory a long run leaves in sympy's caches.
        self.max_tasks_per_worker = max_tasks_per_worker
        self.memory_limit_mb = memory_limit_mb
        self.start_timeout = start_timeout
        self.start_method = start_method
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._alive = 0
        self._free_slots = set(range(self.size))  # a replacement worker takes over the slot of the one it replaces
        self._pid = os.getpid()
        self._closed = False
        self._ctx = None
        self.stats = {"calls": 0, "timeouts": 0, "crashes": 0, "started": 0}

    # --- workers -------------------------------------------------------------------------------------------------
    def _context(self):
        if self._ctx is None:
            ctx = mp.get_context(self.start_method)
            if self.start_method == "forkserver":
                with _SERVER_START_LOCK:
                    _forget_unusable_forkserver()
                    if self.preload:
                        ctx.set_forkserver_preload([__name__] + [p.partition(":")[0] for p in self.preload])
                        # The server is started now, with the warm-up list in its environment only for that
                        # moment: it imports this module first, which runs the list (see _run_server_init), so
                        # every worker it forks starts warm. A server someone else started first is left alone
                        # (workers then warm themselves).
                        os.environ[_SERVER_INIT_ENV] = ",".join(p for p in self.preload if ":" in p)
                        try:
                            from multiprocessing import forkserver

                            forkserver.ensure_running()
                        finally:
                            os.environ.pop(_SERVER_INIT_ENV, None)
            self._ctx = ctx
        return self._ctx

    def _start_worker(self, slot: int) -> _Worker:
        ctx = self._context()
        parent, child = ctx.Pipe(duplex=True)
        cls = _NoMainProcess if self.start_method == "forkserver" and _NoMainProcess is not None else ctx.Process
        proc = cls(target=_worker_main, args=(child, self.preload, self.memory_limit_mb), daemon=True,
                   name="r1-verify-worker")
        proc.start()
        child.close()
        w = _Worker(proc, parent, slot)
        try:
            if not parent.poll(self.start_timeout):
                raise RuntimeError(f"worker process did not start within {self.start_timeout:.0f}s")
            tag, _ = parent.recv()
            if tag != "ready":
                raise RuntimeError(f"worker process sent {tag!r} instead of ready")
        except EOFError:
            w.kill()
            hint = "" if cls is _NoMainProcess else (
                "; if this is a script, guard its entry point with `if __name__ == '__main__':` (on this Python the "
                "forkserver start method re-imports the main module)")
            raise RuntimeError(f"worker process died while starting (exit code {proc.exitcode}){hint}") from None
        except BaseException:
            w.kill()
            raise
        self.stats["started"] += 1
        return w

    def _after_fork_check(self) -> None:
        # A forked copy of the caller must not touch the parent's workers, nor wait on a lock some parent thread held
        # at the moment of the fork: start from scratch, before taking any lock.
        if os.getpid() != self._pid:
            self._cond = threading.Condition()
            self._idle, self._alive, self._pid, self._ctx = [], 0, os.getpid(), None
            self._free_slots = set(range(self.size))

    def _checkout(self, block: bool) -> _Worker | None:
        self._after_fork_check()
        with self._cond:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._alive < self.size:
                    self._alive += 1
                    slot = min(self._free_slots)
                    self._free_slots.discard(slot)
                    break
                if not block:
                    return None
                self._cond.wait()
        try:
            return self._start_worker(slot)
        except BaseException:
            self._release(slot)
            raise

    def _release(self, slot: int) -> None:
        with self._cond:
            if os.getpid() == self._pid:
                self._alive -= 1
                self._free_slots.add(slot)
                self._cond.notify()

    def _checkin(self, w: _Worker) -> None:
        with self._cond:
            if self._closed or os.getpid() != self._pid:
                w.stop()
                return
            self._idle.append(w)
            self._cond.notify()

    def _discard(self, w: _Worker) -> None:
        w.kill()
        self._release(w.slot)

    # --- calls -----------------------------------------------------------------------------------------------------
    def call(self, fn: Callable, *args, timeout: float) -> Outcome:
        return self.map(fn, [args], timeout=timeout)[0]

    def map(self, fn: Callable, arg_tuples: Sequence[tuple], timeout: float,
            affinity: Sequence[Any] | None = None) -> list[Outcome]:
        """Run ``fn(*args)`` for every args tuple on up to ``size`` workers; each call gets ``timeout`` seconds.

        ``affinity``: one hashable per call; calls with equal affinity go to the same worker slot when it is free, so
        per-worker caches (a parsed gold answer) are hit instead of filled once per worker. Idle workers still take
        any pending call, so affinity never leaves a core unused."""
        n = len(arg_tuples)
        results: list[Outcome | None] = [None] * n
        queues: list[deque] = [deque() for _ in range(self.size)]
        for i in range(n):
            queues[hash(affinity[i]) % self.size if affinity is not None else i % self.size].append(i)
        n_pending = n
        running: dict[Any, tuple[_Worker, int, float, float]] = {}  # conn -> (worker, index, deadline, start)
        held: list[_Worker] = []

        def take(slot: int) -> int:
            q = queues[slot % self.size]
            if not q:
                q = max(queues, key=len)
                return q.pop()  # steal from the back: the owner works from the front
            return q.popleft()

        try:
            while n_pending or running:
                while n_pending and len(running) + len(held) < min(self.size, n_pending + len(running)):
                    w = self._checkout(block=not running and not held)
                    if w is None:
                        break
                    held.append(w)
                while n_pending and held:
                    w = held.pop()
                    i = take(w.slot)
                    n_pending -= 1
                    try:
                        w.conn.send((fn, arg_tuples[i]))
                    except (BrokenPipeError, ConnectionResetError, EOFError):
                        self._discard(w)  # died while idle: retry the call on another worker
                        queues[w.slot % self.size].appendleft(i)
                        n_pending += 1
                        continue
                    except Exception as e:  # the call itself cannot be pickled
                        results[i] = Outcome(ERROR, error="call not picklable: " + _describe_exception(e))
                        held.append(w)
                        continue
                    start = time.monotonic()
                    running[w.conn] = (w, i, start + timeout, start)
                if not running:
                    continue
                next_deadline = min(dl for _, _, dl, _ in running.values())
                ready = wait(list(running), timeout=max(0.0, next_deadline - time.monotonic()))
                for conn in ready:
                    w, i, _, start = running.pop(conn)
                    try:
                        status, payload = conn.recv()
                    except (EOFError, OSError, ConnectionResetError):
                        elapsed = time.monotonic() - start
                        self._discard(w)
                        results[i] = Outcome(CRASHED, error=f"worker exited (code {w.proc.exitcode})", elapsed=elapsed)
                        self.stats["crashes"] += 1
                        continue
                    elapsed = time.monotonic() - start
                    results[i] = Outcome(OK, payload, None, elapsed) if status == OK else Outcome(ERROR, None, payload, elapsed)
                    w.tasks += 1
                    if w.tasks >= self.max_tasks_per_worker:
                        w.stop()
                        self._release(w.slot)
                    else:
                        held.append(w)
                now = time.monotonic()
                for conn, (w, i, dl, start) in list(running.items()):
                    if now >= dl:
                        del running[conn]
                        self._discard(w)
                        self.stats["timeouts"] += 1
                        results[i] = Outcome(TIMEOUT, error=f"exceeded {timeout:g}s", elapsed=time.monotonic() - start)
        finally:
            for w in held:
                self._checkin(w)
            for w, *_ in running.values():  # interrupted (KeyboardInterrupt...): their state is unknown
                self._discard(w)
        self.stats["calls"] += n
        return results  # type: ignore[return-value]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._alive -= len(idle)
            self._free_slots.update(w.slot for w in idle)
            self._cond.notify_all()
        for w in idle:
            w.stop()


def _forget_unusable_forkserver() -> None:
    """In a fork()ed copy of a process whose fork server is running, multiprocessing still points at that server and
    fails (it is not our child: waitpid raises ChildProcessError). Forget it, and a dead one, so a new one starts.
    This is private state of CPython's ForkServer, hence every attribute is checked; on another layout nothing is
    done."""
    try:
        from multiprocessing import forkserver

        fs = forkserver._forkserver
        pid = getattr(fs, "_forkserver_pid", None)
        if pid is None or not all(hasattr(fs, a) for a in ("_forkserver_address", "_forkserver_alive_fd", "_lock")):
            return
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                return  # our child, alive
        except ChildProcessError:
            pass
        try:
            os.close(fs._forkserver_alive_fd)  # our copy only: the parent's server no longer waits on us
        except (OSError, TypeError):
            pass
        fs._forkserver_pid = fs._forkserver_address = fs._forkserver_alive_fd = None
        fs._lock = threading.Lock()
    except ImportError:
        pass


_SERVER_INIT_ENV = "R1_POOL_FORKSERVER_INIT"
_SERVER_START_LOCK = threading.Lock()


def _run_server_init() -> None:
    """In the fork server only (it runs ``python -c "from multiprocessing.forkserver import main; ..."``): call the
    warm-up functions the pool named, so forked workers inherit their effect. A failure only costs speed."""
    spec = os.environ.get(_SERVER_INIT_ENV)
    if not spec or sys.argv[:1] != ["-c"] or "multiprocessing.forkserver" not in sys.modules:
        return
    for entry in filter(None, spec.split(",")):
        mod, _, func = entry.partition(":")
        try:
            getattr(importlib.import_module(mod), func)()
        except Exception:  # noqa: BLE001
            pass


_run_server_init()

_POOLS: dict[str, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(name: str, **options) -> WorkerPool:
    """The process-wide pool called ``name``, created on first use with ``options`` (later options are ignored)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(name)
        if pool is None or pool._closed:
            pool = WorkerPool(**options)
            _POOLS[name] = pool
        return pool


def close_all() -> None:
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for p in pools:
        p.close()


atexit.register(close_all)
