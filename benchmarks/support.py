"""What the benchmark scripts share: processes, scratch databases, sign-in.

The multi-process benchmarks (load_faults, create_latency, page_weight) start
the Corti simulator, the dashboard under gunicorn and its worker as logged
child processes on 127.0.0.1; the in-process ones (client_create,
create_cost) start only the simulator. Everything here talks to loopback only.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

KEY_RE = re.compile(r'name="submission_key" value="([0-9a-f-]{36})"')
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# --- environment and databases ------------------------------------------------


def clean_environ(strip: tuple[str, ...]) -> dict[str, str]:
    """This process's environment without the variables starting with `strip`."""
    return {k: v for k, v in os.environ.items() if not k.startswith(strip)}


def base_env(
    database_url: str,
    sim_port: int,
    *,
    read_timeout: float,
    settle_seconds: float,
) -> dict[str, str]:
    """The dashboard's environment: production settings, the simulator as Corti."""
    return {
        **clean_environ(("CORTI_", "DJANGO_", "DATABASE_URL")),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_LOG_LEVEL": "ERROR",
        "DATABASE_URL": database_url,
        "CORTI_SIMULATOR_PORT": str(sim_port),
        "CORTI_TIMEOUT": str(read_timeout),
        "CORTI_CONNECT_TIMEOUT": "1",
        "CORTI_RETRY_BUDGET": "3",
        "CORTI_RETRY_AFTER_MAX": "1",
        "INTAKE_SETTLE_SECONDS": str(settle_seconds),
        "INTAKE_SWEEP_SECONDS": "5",
    }


def scratch_database(url: str, workdir: Path) -> tuple[str, Callable[[], None] | None]:
    """A fresh database's URL, and how to drop it (None: nothing to drop).

    No `url`: a SQLite file in `workdir`. A PostgreSQL `url`: a new database
    with a random name beside the one named, on the same server.
    """
    if not url:
        return f"sqlite:///{workdir / 'load.sqlite3'}", None
    import psycopg

    name = f"corti_intake_load_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    admin = psycopg.connect(url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def describe(database_url: str) -> str:
    """The engine and database name of a URL, e.g. "sqlite load.sqlite3"."""
    parts = urlsplit(database_url)
    return f"{parts.scheme} {parts.path.rsplit('/', 1)[-1]}"


def manage(
    env: dict[str, str], *args: str, capture: bool = False, quiet: bool = False
) -> str:
    """Run a manage.py command to its end; its output when `capture`d.

    `quiet` drops its standard output (errors still show).
    """
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=capture,
        stdout=subprocess.DEVNULL if quiet and not capture else None,
        text=True,
        timeout=300,
    )
    return done.stdout or ""


def prepare_dashboard(
    env: dict[str, str], demo_password: str, *, quiet: bool = False
) -> None:
    """Migrate, cache table, static files and the demo accounts (`demo_password`)."""
    manage(env, "migrate", "--noinput", "--verbosity", "0", quiet=quiet)
    manage(env, "createcachetable", quiet=quiet)
    manage(env, "collectstatic", "--noinput", "--verbosity", "0", quiet=quiet)
    manage({**env, "DEMO_PASSWORD": demo_password}, "ensure_demo_accounts", quiet=quiet)


# --- processes ----------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_process(
    processes: list[subprocess.Popen],
    name: str,
    command: list[str],
    *,
    env: dict[str, str],
    workdir: Path,
) -> subprocess.Popen:
    """Start `command` in its own session, logging to `workdir`/`name`.log.

    The process is appended to `processes`, for `stop_processes`.
    """
    log = open(workdir / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    processes.append(process)
    return process


def stop_process(process: subprocess.Popen) -> None:
    """Stop a process from `start_process` and its children (SIGTERM, then KILL)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Stop every process started, the last started first."""
    for process in reversed(processes):
        stop_process(process)


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until `url` answers 2xx; exit if `process` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=5).ok:
                return
        except requests.RequestException:
            # Not listening yet, or still loading (a busy machine).
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def start_simulator(
    processes: list[subprocess.Popen],
    port: int,
    *,
    env: dict[str, str],
    workdir: Path,
    flags: Sequence[str] = (),
) -> str:
    """The Corti simulator on `port`, logged and answering; its address."""
    simulator = start_process(
        processes,
        "simulator",
        [
            sys.executable,
            "manage.py",
            "corti_simulator",
            "--port",
            str(port),
            *flags,
        ],
        env=env,
        workdir=workdir,
    )
    sim_url = f"http://{HOST}:{port}"
    wait_http(f"{sim_url}/healthz", simulator)
    return sim_url


def start_worker(
    processes: list[subprocess.Popen],
    interval: str,
    *,
    env: dict[str, str],
    workdir: Path,
) -> subprocess.Popen:
    """The dashboard's background worker, checking every `interval` seconds."""
    return start_process(
        processes,
        "worker",
        [sys.executable, "manage.py", "db_worker", "--interval", interval],
        env=env,
        workdir=workdir,
    )


def start_dashboard(
    processes: list[subprocess.Popen],
    *,
    env: dict[str, str],
    workdir: Path,
    **overrides: str,
) -> str:
    """The dashboard under config/gunicorn.conf.py on a free port, answering.

    `overrides` are added to its environment (WEB_CONCURRENCY=...); it logs
    to `workdir`/gunicorn.log and access.log. Returns its base address.
    """
    port = free_port()
    web = start_process(
        processes,
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-c",
            "config/gunicorn.conf.py",
            "--access-logfile",
            str(workdir / "access.log"),
        ],
        env={**env, "HOST": HOST, "PORT": str(port), **overrides},
        workdir=workdir,
    )
    base = f"http://{HOST}:{port}"
    wait_http(f"{base}/healthz", web)
    return base


def spawn_simulator() -> tuple[subprocess.Popen, str]:
    """The Corti simulator on a free loopback port; its process and address.

    Unlogged (its own output is read for the address), for the in-process
    benchmarks: `terminate()` it when done.
    """
    process = subprocess.Popen(
        [sys.executable, "manage.py", "corti_simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None  # stdout=PIPE
    line = process.stdout.readline()
    if "listening on " not in line:
        process.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return process, line.split("listening on ", 1)[1].strip()


@dataclass
class ScratchRun:
    """A benchmark's scratch folder (logs), database and started processes."""

    workdir: Path
    database_url: str
    processes: list[subprocess.Popen] = field(default_factory=list)


@contextlib.contextmanager
def scratch_run(
    prefix: str, database_url: str, *, remove_workdir: bool = False
) -> Iterator[ScratchRun]:
    """A scratch folder and database (see `scratch_database`) for one run.

    On the way out it stops every process in `processes`, drops the database
    and, with `remove_workdir`, deletes the folder (else its logs stay).
    """
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    url, drop_database = scratch_database(database_url, workdir)
    run = ScratchRun(workdir, url)
    try:
        yield run
    finally:
        stop_processes(run.processes)
        if drop_database:
            drop_database()
        if remove_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


# --- the dashboard over HTTP --------------------------------------------------


def sign_in(
    base: str,
    username: str,
    password: str,
    *,
    timeout: float = 30,
    post_timeout: float | None = None,
    failure: str = "",
) -> requests.Session:
    """A session signed in through the sign-in form; exits when refused.

    `failure` starts the exit message (default "could not sign in as NAME");
    `post_timeout` bounds the POST (default: `timeout`).
    """
    http = requests.Session()
    page = http.get(f"{base}/accounts/login/", timeout=timeout)
    csrf = CSRF_RE.search(page.text)
    answer = http.post(
        f"{base}/accounts/login/",
        data={
            "csrfmiddlewaretoken": csrf.group(1) if csrf else "",
            "username": username,
            "password": password,
        },
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=timeout if post_timeout is None else post_timeout,
    )
    if answer.status_code != 302:
        failure = failure or f"could not sign in as {username}"
        raise SystemExit(f"{failure}: {answer.status_code}")
    return http


def quantile(values: list[float], q: float) -> float:
    """The value at share `q` of the sorted `values` (nearest rank, rounded down)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
