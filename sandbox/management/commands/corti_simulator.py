"""Run the Corti simulator: a local HTTP stand-in for the Corti API and its
streams websocket."""

import argparse
import signal
import sys
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.simulator import FAULT_KINDS, Fault, SimulatorState, make_server
from sandbox.streams import StreamServer


def fault_spec(text: str) -> Fault:
    try:
        return Fault.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class Command(BaseCommand):
    help = "Run the Corti simulator on 127.0.0.1 until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=settings.CORTI_SIMULATOR_PORT,
            help="Port to listen on; 0 picks a free one (default: %(default)s).",
        )
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="Loopback address to listen on: 127.0.0.1, localhost or ::1 "
            "(the simulator holds sandbox patients; never on a network).",
        )
        parser.add_argument(
            "--stream-port",
            type=int,
            default=0,
            help="Port of the streams websocket; 0 picks a free one "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--stream-config-timeout",
            type=float,
            default=10.0,
            help="Seconds a stream socket waits for its config message "
            "(default: %(default)s, as Corti).",
        )
        parser.add_argument("--tenant", default="base", help="Tenant name.")
        parser.add_argument("--client-id", default="sandbox-client")
        parser.add_argument("--client-secret", default="sandbox-secret")
        parser.add_argument(
            "--token-ttl",
            type=float,
            default=300.0,
            help="Seconds an access token lives (default: %(default)s, as Corti).",
        )
        parser.add_argument(
            "--fault",
            action="append",
            type=fault_spec,
            default=[],
            metavar="ENDPOINT:KIND[:RATE]",
            help=(
                "Misbehave on purpose; repeat for several rules, the first that "
                "fires wins. ENDPOINT is create, list, get, update, delete, token, "
                "stream or any; KIND one of "
                f"{', '.join(FAULT_KINDS)}; RATE the probability (default 1). "
                "Example: --fault create:created-504:0.05"
            ),
        )
        parser.add_argument(
            "--fault-delay",
            type=float,
            default=2.0,
            help="Seconds a slow or hang fault waits (default: %(default)s).",
        )
        parser.add_argument(
            "--fault-retry-after",
            type=float,
            default=1.0,
            help="Retry-After of a 429 fault, seconds (default: %(default)s).",
        )
        parser.add_argument(
            "--fault-seed",
            type=int,
            default=None,
            help="Seed for the fault dice, for a repeatable run.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            faults = [
                Fault(
                    kind=fault.kind,
                    endpoint=fault.endpoint,
                    rate=fault.rate,
                    delay=options["fault_delay"],
                    retry_after=options["fault_retry_after"],
                )
                for fault in options["fault"]
            ]
        except ValueError as exc:
            raise CommandError(f"--fault-delay/--fault-retry-after: {exc}") from exc
        state = SimulatorState(
            tenant_name=options["tenant"],
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            token_ttl=options["token_ttl"],
            faults=faults,
            seed=options["fault_seed"],
        )
        try:
            server = make_server(
                host=options["host"], port=options["port"], state=state
            )
        except ValueError as exc:
            raise CommandError(f"--host: {exc}") from exc
        streams = StreamServer(
            state,
            host=options["host"],
            port=options["stream_port"],
            config_timeout=options["stream_config_timeout"],
        )
        try:
            streams.start()
        except OSError as exc:
            server.server_close()
            raise CommandError(
                f"--stream-port: cannot listen on {options['stream_port']}: {exc}"
            ) from exc

        def stop(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        # Tests and `make run` read this line to learn the ports.
        self.stdout.write(
            f"Corti simulator listening on {server.base_url} "
            f"(streams on {streams.origin})"
        )
        sys.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            # A second signal while closing must not interrupt the cleanup.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            streams.stop()
            server.server_close()
            self.stdout.write("Corti simulator stopped.")
