"""Start the dashboard: gunicorn, its background worker, and (in sandbox mode)
the Corti simulator.

Runs each as a child process, prints the address and the demo credentials,
and stops all of them cleanly on Ctrl-C or SIGTERM, or when any one exits.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config.logs import STARTUP_LOGGED
from intake.corti import redact_url

STARTUP_SECONDS = 30
# gunicorn lets requests finish for graceful_timeout (10 s) before it stops.
STOP_SECONDS = 15


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_group(child: subprocess.Popen) -> None:
    """SIGTERM the child's process group, wait, then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        try:
            child.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; a worker it left behind must not keep the port.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        break


class Command(BaseCommand):
    help = "Run the dashboard under gunicorn on 127.0.0.1:$PORT (default 8000)."

    def handle(self, *args, **options):
        host = os.environ.get("HOST", "127.0.0.1")
        port = os.environ.get("PORT", "8000")
        base_dir = Path(settings.BASE_DIR)
        children: list[subprocess.Popen] = []

        def stop():
            for child in children:
                _stop_group(child)

        # Ctrl-C and SIGTERM both stop the children cleanly, even when this
        # process was started with SIGINT ignored (as background jobs are).
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        # This process wrote the start-up lines; its children need not repeat
        # them (config.logs.StartupLineOnce).
        os.environ[STARTUP_LOGGED] = "1"
        # The readiness check's shared cache (a no-op with REDIS_URL or when
        # the table exists).
        call_command("createcachetable", stdout=self.stdout)
        call_command("ensure_demo_accounts", stdout=self.stdout)
        try:
            if settings.CORTI_SANDBOX:
                children.append(self._start_simulator())
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "config.wsgi:application",
                        "--config",
                        str(base_dir / "config" / "gunicorn.conf.py"),
                    ],
                    cwd=base_dir,
                    env={**os.environ, "HOST": host, "PORT": port},
                    # Its own process group: Ctrl-C reaches only this command,
                    # which then stops gunicorn and all its workers in order.
                    start_new_session=True,
                )
            )
            children.append(self._start_worker(base_dir))
            self._wait_until_ready(f"http://{host}:{port}/healthz", children)
            mode = (
                "SANDBOX: the Corti simulator answers instead of Corti"
                if settings.CORTI_SANDBOX
                else f"Corti tenant {settings.CORTI_TENANT_NAME} at "
                f"{redact_url(settings.CORTI_API_URL)}"
            )
            self.stdout.write(
                self.style.SUCCESS(f"\nCorti Intake is running: http://{host}:{port}/")
                + f"\n  {mode}"
                + "\n  Background worker: running (settles lost answers by itself)"
                + "\n  Press Ctrl-C to stop.\n"
            )
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            raise CommandError("A child process exited; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            stop()
            self.stdout.write("Stopped.")

    def _start_worker(self, base_dir: Path) -> subprocess.Popen:
        """The background worker: settles lost answers, sweeps, on its own."""
        return subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "1"],
            cwd=base_dir,
            # Its own process group, stopped in order like the others.
            start_new_session=True,
        )

    def _start_simulator(self) -> subprocess.Popen:
        port = settings.CORTI_SIMULATOR_PORT
        stream_port = str(settings.CORTI_SIMULATOR_STREAM_PORT)
        child = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "corti_simulator",
                "--port",
                str(port),
                "--stream-port",
                stream_port,
            ],
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert child.stdout is not None  # stdout=PIPE
        line = child.stdout.readline()
        if "listening" not in line:
            child.wait(timeout=5)
            raise CommandError(
                f"The Corti simulator could not start on ports {port} and "
                f"{stream_port}; is one in use? Set CORTI_SIMULATOR_PORT and "
                "CORTI_SIMULATOR_STREAM_PORT to free ports."
            )
        self.stdout.write(line.strip())
        return child

    def _wait_until_ready(self, url: str, children: list[subprocess.Popen]) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if any(child.poll() is not None for child in children):
                raise CommandError(
                    f"The dashboard did not start; is {url.split('/')[2]} in use? "
                    "Set PORT to a free port."
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise CommandError(
            f"The dashboard did not answer {url} within {STARTUP_SECONDS} s."
        )
