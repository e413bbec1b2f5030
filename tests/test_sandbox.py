"""The sandbox against hostile programs: every one is contained, the machine is unharmed and the run finishes.

These run the real sandbox (namespaces, uid drop, rlimits). Network checks only ever target 127.0.0.1 (a listener
of this test) and TEST-NET addresses (192.0.2.0/24, 203.0.113.0/24: documentation ranges, nothing is there).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.verifiers import sandbox
from harness.verifiers.sandbox import (
    MEMORY_LIMIT,
    OK,
    OUTPUT_LIMIT,
    RUNTIME_ERROR,
    SYNTAX_ERROR,
    TIME_LIMIT,
    execute,
)

pytestmark = pytest.mark.timeout(120)

ROOT = os.geteuid() == 0


def run1(program: str, stdin: str = "", **kw) -> sandbox.Execution:
    [ex] = execute(textwrap.dedent(program), [stdin], **kw)
    return ex


def sandbox_uid_processes() -> list[int]:
    """Host pids whose real uid is a sandbox uid (what a leaked daemon or fork-bomb survivor would be)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            for line in (d / "status").read_text().splitlines():
                if line.startswith("Uid:"):
                    uid = int(line.split()[1])
                    if sandbox.SANDBOX_UID_BASE <= uid < sandbox.SANDBOX_UID_BASE + sandbox.SANDBOX_SLOTS:
                        found.append(int(d.name))
                    break
        except (OSError, ValueError):
            continue
    return found


@pytest.fixture(scope="module", autouse=True)
def isolated():
    info = sandbox.isolation()
    # The hostile suite is about real isolation: on a machine without it these tests must fail, not pass vacuously.
    assert info["namespaces"] and info["readonly_root"], f"sandbox is not isolated here: {info}"
    if ROOT:
        assert info["uid"] is not None and info["uid"] >= sandbox.SANDBOX_UID_BASE
    return info


@pytest.fixture
def outside_dir():
    """A world-writable directory outside the sandbox's scratch space, visible (read-only) inside it."""
    d = Path(tempfile.mkdtemp(prefix="r1-sbx-victim-", dir="/var/tmp"))
    d.chmod(0o777)
    victim = d / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o666)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# --- ordinary behaviour ---------------------------------------------------------------------------------------------
def test_runs_program_on_each_input_in_order():
    exs = execute("import sys\nprint(sum(map(int, sys.stdin.read().split())))", ["1 2", "3 4 5", ""])
    assert [e.status for e in exs] == [OK, OK, OK]
    assert [e.stdout for e in exs] == ["3\n", "12\n", "0\n"]


def test_each_test_starts_from_fresh_interpreter_state():
    prog = """
    import builtins, sys
    seen = getattr(builtins, "_seen", 0)
    builtins._seen = seen + 1
    open("state.txt", "a").write("x")
    print(seen, open("state.txt").read())
    """
    exs = execute(textwrap.dedent(prog), ["", "", ""])
    assert [e.stdout for e in exs] == ["0 x\n"] * 3


def test_verdicts_of_failing_programs():
    assert run1("print(1").status == SYNTAX_ERROR
    assert run1("raise ValueError('boom')").status == RUNTIME_ERROR
    assert "ValueError: boom" in run1("raise ValueError('boom')").stderr
    assert run1("import sys; sys.exit(3)").status == RUNTIME_ERROR
    assert run1("import sys; print('ok'); sys.exit(0)").status == OK
    assert run1("import os; os.abort()").status == RUNTIME_ERROR


def test_syntax_error_marks_every_test():
    exs = execute("def f(:\n  pass", ["1", "2", "3"])
    assert [e.status for e in exs] == [SYNTAX_ERROR] * 3


def test_function_mode_calls_solution_method():
    prog = "class Solution:\n    def add(self, a: List[int], b: int) -> List[int]:\n        print('noise')\n        return [x + b for x in a]\n"
    exs = execute(prog, ["[1, 2]\n3", "[]\n1"], mode="function", func_name="add",
                  prelude="from typing import *\n", preload=["typing"])
    assert [(e.status, e.stdout) for e in exs] == [(OK, "[4, 5]"), (OK, "[]")]


def test_script_mode_failed_assert_is_wrong_answer():
    assert run1("assert 1 + 1 == 2", mode="script").status == OK
    assert run1("assert 1 + 1 == 3", mode="script").status == sandbox.WRONG_ANSWER


@pytest.mark.parametrize("escape", ["import os; os._exit(0)", "import sys; sys.exit(0)", "exit()", "raise SystemExit"])
def test_script_mode_exit_before_the_checks_is_not_a_pass(escape):
    # a self-checking program (HumanEval) whose answer leaves before the asserts below it run
    ex = run1(f"def f():\n    return 1\n{escape}\nassert f() == 2", mode="script")
    assert ex.status == RUNTIME_ERROR
    ok = run1("print('noise')\nassert True", mode="script")
    assert ok.status == OK and ok.stdout == "noise\n"


def test_programs_can_import_installed_packages_and_stdlib():
    ex = run1("import numpy, fractions, decimal\nprint(numpy.arange(3).sum())")
    assert (ex.status, ex.stdout) == (OK, "3\n"), ex.stderr


def test_scratch_dir_is_writable_and_private():
    ex = run1("""
    import os, tempfile
    open("a.txt", "w").write("hi")
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("x")
    print(open("a.txt").read(), os.getcwd().startswith("/tmp"))
    """)
    assert (ex.status, ex.stdout) == (OK, "hi True\n"), ex.stderr


# --- hostile programs -----------------------------------------------------------------------------------------------
def test_infinite_loop_hits_time_limit():
    t = time.monotonic()
    ex = run1("while True:\n    pass", time_limit=1)
    assert ex.status == TIME_LIMIT
    assert time.monotonic() - t < 5


def test_sleep_past_limit_is_killed_on_wall_clock():
    t = time.monotonic()
    ex = run1("import time\ntime.sleep(60)\nprint('woke')", time_limit=1)
    assert ex.status == TIME_LIMIT and ex.stdout == ""
    assert time.monotonic() - t < 5


def test_memory_bomb_is_stopped():
    ex = run1("x = []\nwhile True:\n    x.append(bytearray(10 ** 7))", memory_mb=256, time_limit=5)
    assert ex.status == MEMORY_LIMIT
    assert run1("x = ' ' * (10 ** 11)", memory_mb=256).status == MEMORY_LIMIT


def test_gigabyte_of_output_is_capped():
    t = time.monotonic()
    ex = run1("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)",
              output_limit=4 << 20, time_limit=10)
    assert ex.status == OUTPUT_LIMIT
    assert len(ex.stdout) <= 4 << 20
    ex = run1("import os\nchunk = b'e' * (1 << 20)\nfor _ in range(1024):\n    os.write(2, chunk)",
              output_limit=4 << 20, time_limit=10)
    assert ex.status == OUTPUT_LIMIT and len(ex.stderr) <= sandbox.STDERR_KEEP
    assert time.monotonic() - t < 20


def test_fork_bomb_is_contained_and_machine_stays_responsive():
    done = threading.Event()
    result = {}

    def bomb():
        result["ex"] = run1("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """, time_limit=3)
        done.set()

    th = threading.Thread(target=bomb)
    th.start()
    latencies = []
    while not done.is_set():
        t = time.monotonic()
        subprocess.run(["true"], check=True)
        latencies.append(time.monotonic() - t)
        time.sleep(0.1)
    th.join()
    assert result["ex"].status in (TIME_LIMIT, RUNTIME_ERROR)
    assert latencies and max(latencies) < 2.0, latencies
    assert sandbox_uid_processes() == []


def test_daemon_does_not_outlive_the_run(outside_dir):
    marker = outside_dir / "daemon-was-here"
    ex = run1(f"""
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for _ in range(300):
                try:
                    open({str(marker)!r}, "w").write("alive")
                except OSError:
                    pass
                time.sleep(0.05)
            os._exit(0)
        os._exit(0)
    print("parent done")
    """)
    assert ex.status == OK and ex.stdout == "parent done\n"
    time.sleep(0.5)
    assert sandbox_uid_processes() == []
    assert not marker.exists()


def test_network_is_unreachable():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        ex = run1(f"""
        import socket
        for addr in [("127.0.0.1", {port}), ("192.0.2.1", 80), ("203.0.113.1", 443)]:
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(addr)
                print("CONNECTED", addr)
            except OSError as e:
                print("blocked", addr[0], type(e).__name__)
        """)
        assert ex.status == OK, ex.stderr
        assert "CONNECTED" not in ex.stdout
        assert ex.stdout.count("blocked") == 3
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing ever reached the host's loopback
    finally:
        listener.close()


def test_cannot_write_or_delete_outside(outside_dir):
    victim = outside_dir / "victim.txt"
    before = sorted(p.name for p in outside_dir.iterdir())
    targets = [str(outside_dir / "new.txt"), "/etc/r1-sandbox-was-here", "/usr/r1-sandbox-was-here",
               str(Path.cwd() / "r1-sandbox-was-here"), "/var/tmp/r1-sandbox-was-here",
               os.path.join(sys.prefix, "r1-sandbox-was-here"), "/dev/r1-sandbox-was-here"]
    ex = run1(f"""
    import os, shutil
    hits = []
    def attempt(name, fn):
        try:
            fn()
            hits.append(name)
        except OSError:
            pass
    victim = {str(victim)!r}
    attempt("remove", lambda: os.remove(victim))
    attempt("truncate", lambda: open(victim, "w").write("pwned"))
    attempt("append", lambda: open(victim, "a").write("pwned"))
    attempt("rename", lambda: os.rename(victim, victim + ".moved"))
    attempt("chmod", lambda: os.chmod(victim, 0))
    attempt("rmtree", lambda: shutil.rmtree({str(outside_dir)!r}))
    attempt("passwd", lambda: open("/etc/passwd", "a").write("x"))
    attempt("python", lambda: os.remove(os.__file__))
    for t in {targets!r}:
        attempt("create " + t, lambda t=t: open(t, "w").write("x"))
    print("HITS", hits)
    """)
    assert ex.status == OK, ex.stderr
    assert ex.stdout == "HITS []\n"
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in outside_dir.iterdir()) == before
    for t in targets:
        assert not os.path.exists(t)


def test_only_a_minimal_filesystem_is_visible():
    repo = Path(__file__).resolve().parent.parent
    # Directories above the interpreter's (e.g. /root for a pyenv Python) exist only as empty path components.
    hidden = [repo / "harness", repo / "tests", repo / "pyproject.toml", Path.home() / ".bashrc", Path("/home"),
              Path("/var"), Path("/srv"), Path("/mnt"), Path("/run"), Path("/sys"), Path("/etc/hostname")]
    if os.environ.get("R1_DATA_DIR"):
        hidden.append(Path(os.environ["R1_DATA_DIR"]) / "codeforces")  # benchmark data holds the expected outputs
    hidden = [str(p) for p in hidden if p.exists()]
    assert len(hidden) >= 5
    ex = run1(f"""
    import os
    print([p for p in {hidden!r} if os.path.exists(p)])
    print(os.path.isdir("/usr/bin"), os.path.exists("/dev/null"), sorted(os.listdir("/proc"))[:0])
    """)
    assert ex.status == OK, ex.stderr
    assert ex.stdout == "[]\nTrue True []\n"


def test_cannot_read_the_callers_secrets(monkeypatch, outside_dir):
    monkeypatch.setenv("R1_TEST_SECRET", "hunter2-sandbox-secret")
    secret_file = outside_dir / "secret"
    secret_file.write_text("hunter2-sandbox-secret")
    secret_file.chmod(0o600)
    ex = run1(f"""
    import os
    found = []
    if any("hunter2" in v for v in os.environ.values()):
        found.append("environ")
    for pid in os.listdir("/proc"):
        if pid.isdigit() or pid == "self":
            try:
                if b"hunter2" in open(f"/proc/{{pid}}/environ", "rb").read():
                    found.append("proc " + pid)
            except OSError:
                pass
    for path in [{str(secret_file)!r}, "/proc/{os.getpid()}/environ", "/proc/1/environ"]:
        try:
            if "hunter2" in open(path, errors="replace").read():
                found.append(path)
        except OSError:
            pass
    print("FOUND", found, sorted(os.environ))
    """)
    assert ex.status == OK, ex.stderr
    assert "hunter2" not in ex.stdout
    assert ex.stdout.startswith("FOUND []")
    assert "R1_TEST_SECRET" not in ex.stdout


def test_cannot_kill_the_caller():
    me = os.getpid()
    ex = run1(f"""
    import os, signal
    hits = []
    for pid in [os.getppid(), 1, {me}, -1]:
        try:
            os.kill(pid, signal.SIGKILL)
            hits.append(pid)
        except OSError:
            pass
    print("visible", os.path.exists("/proc/{me}"))
    """)
    # kill(-1) "succeeds" by killing the program itself (nothing else is reachable), so no output is also fine
    assert ex.status in (OK, RUNTIME_ERROR)
    assert "visible True" not in ex.stdout
    assert run1("print('still here')").stdout == "still here\n"  # the sandbox machinery survived


def test_run_finishes_even_if_program_kills_its_supervisor_attempts():
    # SIGSTOP of everything reachable, then a hang: the caller's wall clock still ends the run
    t = time.monotonic()
    exs = execute("import os, signal, time\nfor p in range(1, 50):\n    try: os.kill(p, signal.SIGSTOP)\n"
                  "    except OSError: pass\ntime.sleep(30)", ["", ""], time_limit=1)
    assert [e.status for e in exs] == [TIME_LIMIT, TIME_LIMIT]
    assert time.monotonic() - t < 15


def test_unisolated_fallback_warns_loudly(monkeypatch, capsys):
    monkeypatch.setenv("R1_SANDBOX_NO_NAMESPACES", "1")
    monkeypatch.setattr(sandbox, "_WARNED", False)
    with pytest.warns(RuntimeWarning, match="NOT ISOLATED"):
        ex = run1("print(6 * 7)")
    assert (ex.status, ex.stdout) == (OK, "42\n")
    assert "NOT ISOLATED" in capsys.readouterr().err
    monkeypatch.delenv("R1_SANDBOX_NO_NAMESPACES")
    assert sandbox.isolation()  # back to the isolated default for the other tests
    execute("pass", [""])
    assert sandbox._ISOLATION["namespaces"]


@pytest.mark.skipif(not ROOT or shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3"),
                    reason="needs root (to become an unprivileged user) and a system python")
def test_unprivileged_user_gets_a_user_namespace_sandbox(outside_dir):
    """Without root the sandbox uses a user namespace; the same program is contained the same way."""
    repo = Path(__file__).resolve().parent.parent
    src = repo / "harness" / "verifiers" / "sandbox.py"
    # Python for the unprivileged user: the system one (the venv's interpreter may live under /root).
    probe = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.version_info >= (3, 10))"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "True":
        pytest.skip("system python is older than 3.10")
    copy = outside_dir / "sandbox_copy.py"  # pytest's tmp_path is private to root
    copy.write_text(src.read_text())
    copy.chmod(0o644)
    prog = (
        "import os, socket\n"
        "s = socket.socket(); s.settimeout(1)\n"
        "try:\n    s.connect(('192.0.2.1', 80)); print('net open')\nexcept OSError:\n    print('net blocked')\n"
        "try:\n    open('/var/tmp/r1-userns-was-here', 'w'); print('fs open')\nexcept OSError:\n"
        "    print('fs blocked')\n"
    )
    script = (
        "import importlib.util, os\n"
        f"spec = importlib.util.spec_from_file_location('sbx', {str(copy)!r})\n"
        "import sys; sbx = sys.modules['sbx'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(sbx)\n"
        f"ex = sbx.execute({prog!r}, [''])[0]\n"
        "print(os.getuid(), sbx.isolation()['namespaces'], ex.status, ex.stdout.replace(chr(10), '|'), ex.stderr)\n"
    )
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script],
                       capture_output=True, text=True, timeout=60, cwd="/")
    if "Operation not permitted" in r.stdout + r.stderr and "unshare" in r.stdout + r.stderr:
        pytest.skip("unprivileged user namespaces are disabled on this kernel")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:3] == ["65534", "True", "ok"], r.stdout + r.stderr
    assert "net blocked|fs blocked|" in r.stdout
    assert not os.path.exists("/var/tmp/r1-userns-was-here")


def test_forked_processes_never_share_a_sandbox_uid():
    """Training code may fork workers; a child must not reuse a slot its parent holds (flock is per open file, and a
    forked child shares its parent's open files)."""
    n = sandbox._SLOTS.acquire()
    sandbox._SLOTS.release(n)  # the parent now has the slot's lock file open, unlocked
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.read(go_r, 1)  # wait until the parent holds the slot
            os.write(res_w, str(sandbox._SLOTS.acquire()).encode())
            code = 0
        finally:
            os._exit(code)
    assert sandbox._SLOTS.acquire() == n
    try:
        os.write(go_w, b"x")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert int(os.read(res_r, 100)) != n
    finally:
        sandbox._SLOTS.release(n)
        for fd in (go_r, go_w, res_r, res_w):
            os.close(fd)
