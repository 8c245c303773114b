"""`make run`'s command: the dashboard, its worker and the simulator, together.

Started as a user would (a real process on free loopback ports, a scratch
SQLite database), then stopped with Ctrl-C: all three must go.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from config.logs import STARTUP_LOGGED
from tests.support.processes import BASE_DIR, free_port

# The real dashboard, worker and simulator processes, then Ctrl-C: ~8 s.
pytestmark = pytest.mark.slow


def children_of(pid: int) -> dict[int, str]:
    """Direct children of a process: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # The parent pid is the 2nd field after the parenthesised name.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not collected it yet.
    return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_run_starts_dashboard_worker_and_simulator_and_ctrl_c_stops_all_three(
    tmp_path,
):
    port, simulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "PORT": str(port),
        "CORTI_SIMULATOR_PORT": str(simulator_port),
        "DEMO_PASSWORD": "run-test-password-1",
        "WEB_CONCURRENCY": "1",
    }
    for name in ("CORTI_CLIENT_ID", "CORTI_API_URL", "CORTI_AUTH_URL", STARTUP_LOGGED):
        env.pop(name, None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_dashboard"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("Corti Intake is running" in line for line in lines):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        assert any("Background worker: running" in line for line in lines)
        children = children_of(process.pid)
        kinds = {
            kind
            for cmd in children.values()
            for kind in ("gunicorn", "db_worker", "corti_simulator")
            if kind in cmd
        }
        assert kinds == {"gunicorn", "db_worker", "corti_simulator"}, children
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/healthz", timeout=5
        ) as answer:
            assert answer.status == 200

        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=60)

        assert any("Stopped." in line for line in lines), "".join(lines)
        # Four processes set Django up (the command, the simulator, the
        # worker, gunicorn's worker): django-axes' start-up line once, not four.
        axes = [line for line in lines if "AXES: BEGIN version" in line]
        assert len(axes) == 1, "".join(lines)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [cmd for pid, cmd in children.items() if alive(pid)]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=5)
        process.stdout.close()
