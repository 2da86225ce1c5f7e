"""Run the bench CSMS standalone: ``python -m hil.csms --host 127.0.0.1 --port 9000``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
from collections.abc import Callable, Sequence

from hil.csms import BenchCsms
from hil.versions import SUBPROTOCOLS, V16


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hil.csms",
        description="Bench OCPP 1.6J / 2.0.1 central system; prints every frame exchanged.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on (0 = any)")
    parser.add_argument(
        "--ocpp-version",
        action="append",
        choices=list(SUBPROTOCOLS),
        metavar="VERSION",
        help="speak this OCPP version, 1.6 or 2.0.1 (repeatable, preferred first; default 1.6)",
    )
    parser.add_argument(
        "--heartbeat-interval", type=int, default=60, help="interval in BootNotification answers"
    )
    parser.add_argument(
        "--boot-status",
        default="Accepted",
        choices=["Accepted", "Pending", "Rejected"],
        help="status in BootNotification answers",
    )
    parser.add_argument(
        "--password",
        action="append",
        default=[],
        metavar="CP_ID=PASSWORD",
        help="require HTTP Basic auth for that charge point (repeatable)",
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="serve wss:// with this chain")
    parser.add_argument("--tls-key", metavar="PEM", help="the key of --tls-cert")
    parser.add_argument(
        "--client-ca",
        metavar="PEM",
        help="check client certificates issued by these CAs (security profile 3)",
    )
    parser.add_argument(
        "--answer-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before answering each CALL (a slow link)",
    )
    parser.add_argument(
        "--truncate",
        type=int,
        default=4000,
        metavar="CHARS",
        help="shorten printed lines to this many characters (0 = never)",
    )
    return parser


def _say(line: str) -> None:
    print(line, flush=True)


def _printer(limit: int) -> Callable[[str], None]:
    def say(line: str) -> None:
        _say(line if limit <= 0 or len(line) <= limit else line[:limit] + " …")

    return say


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls_cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.client_ca is not None:
        context.load_verify_locations(args.client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    csms = BenchCsms(
        args.host,
        args.port,
        heartbeat_interval=args.heartbeat_interval,
        boot_status=args.boot_status,
        printer=_printer(args.truncate),
        tls=_tls(args),
        versions=args.ocpp_version or [V16],
    )
    csms.answer_delay_s = args.answer_delay
    for item in args.password:
        cp_id, _, password = item.partition("=")
        csms.passwords[cp_id] = password
    try:
        async with csms:
            speaks = ", ".join(SUBPROTOCOLS[v] for v in csms.versions)
            _say(f"bench CSMS listening on {csms.url}/<chargePointId> (Ctrl-C to stop; {speaks})")
            await stop.wait()
            _say("stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for item in args.password:
        if "=" not in item:
            parser.error(f"--password expects CP_ID=PASSWORD, got {item!r}")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.client_ca is not None and args.tls_cert is None:
        parser.error("--client-ca needs --tls-cert")
    if args.ocpp_version is not None and len(set(args.ocpp_version)) != len(args.ocpp_version):
        parser.error("--ocpp-version: each version once")
    asyncio.run(serve(args))
    return 0
