"""``chargepoint run|status|check-config``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from firmware import __version__, hard_reset, logs, preflight, startup, stop_signals
from firmware.config import Config, load_config
from firmware.errors import ConfigError, FirmwareError
from firmware.management.releases import ENV as RELEASE_ENV
from firmware.management.releases import Releases
from firmware.service_notify import ServiceNotifier
from hal.errors import HalConfigError

EXIT_CONFIG = 2
TOKEN_ENV = "CHARGEPOINT_API_TOKEN"  # the API token for `status --api`

log = logging.getLogger("firmware.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargepoint", description="OCPP 1.6J charge point")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the charge point in the foreground")
    run.add_argument("--config", required=True, type=Path, help="YAML configuration file")
    status = sub.add_parser("status", help="show the status of a running charge point")
    status.add_argument(
        "--config", type=Path, help="read the API address (and api.token) from this config"
    )
    status.add_argument("--api", help="API base URL (default http://127.0.0.1:8180)")
    status.add_argument("--json", action="store_true", help="print raw JSON")
    check = sub.add_parser(
        "check-config",
        help="refuse what `run` would refuse because of the file, without starting anything",
    )
    check.add_argument("--config", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "status":
        return _status(args)
    try:
        # One path for both commands: what one refuses, the other does, in the same words.
        config = load_config(args.config)
        notices = preflight.check(config)
    except (HalConfigError, ConfigError) as err:
        print(f"chargepoint: configuration error: {logs.redact(str(err))}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        for notice in notices:
            print(f"{args.config}: notice: {logs.redact(notice)}")
        print(f"{args.config}: OK")
        return 0
    return _run(config)


def _run(config: Config) -> int:
    stop_signals.install()
    logs.setup(config.log_level)
    logs.add_secret(config.ocpp.password)
    logs.add_secret(config.api.token)
    log_file = config.diagnostics.log_file
    if log_file is not None:
        try:
            logs.add_file(
                log_file,
                max_bytes=config.diagnostics.log_max_bytes,
                backups=config.diagnostics.log_backups,
                full_id_tags=config.log_level == "DEBUG" and config.diagnostics.include_id_tags,
            )
        except OSError as err:
            message = str(preflight.log_file_error(log_file, err))
            print(f"chargepoint: configuration error: {message}", file=sys.stderr)
            return EXIT_CONFIG
    _run_release(config)
    with startup.imports():
        from firmware.app import App

    async def go() -> tuple[bool, bool]:
        app = App(config)
        # The password the CSMS set (persisted) and every later one are secrets too.
        app.front.watch_secrets(logs.add_secret)
        restart = await app.run()
        return restart, app.hard_reset

    try:
        try:
            restart, hard = asyncio.run(go())
        except ExceptionGroup as group:  # raised inside the app's TaskGroup
            raise _first_known(group) from group
    except (HalConfigError, ConfigError) as err:
        print(f"chargepoint: configuration error: {logs.redact(str(err))}", file=sys.stderr)
        return EXIT_CONFIG
    except FirmwareError as err:
        log.critical("cannot run: %s", err)
        return 1
    # From here on stop signals are held pending (firmware/stop_signals.py): one that
    # came after the event loop ended still wins over the restart.
    if restart and stop_signals.arrived():
        log.warning("stop signal received while restarting: exiting instead")
        restart = False
    if restart:
        service = ServiceNotifier()
        command = config.reset.hard_command
        if (
            hard
            and command is not None
            and hard_reset.reboot(command, config.reset.reboot_timeout_s, service)
        ):
            log.info("stopped")
            return 0
        log.warning("restarting")
        # The loop ended in good order: give the new image a whole watchdog interval.
        if service.watchdog_s is not None:
            service.watchdog()
        logging.shutdown()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "firmware", *sys.argv[1:]])
    log.info("stopped")
    return 0


def _run_release(config: Config) -> None:
    """Re-execute into the firmware release that should run (firmware/management/releases.py).

    Returns when this process is the one: no release, or this one. Stop signals
    stay pending across the re-execution, as on a restart.
    """
    try:
        launch = Releases(config.state_dir).choose(os.environ)
    except Exception:
        log.exception("cannot tell which firmware release to run: running this one")
        return
    if launch is None:
        return
    stop_signals.hold()
    if stop_signals.arrived():
        return  # the event loop sees it at once and stops this process
    log.warning("running firmware release %s", launch.name)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env[RELEASE_ENV] = launch.name
    python = str(launch.python)
    try:
        os.execve(python, [python, "-m", "firmware", *sys.argv[1:]], env)
    except OSError as err:
        log.error("cannot run firmware release %s (%s): running this one", launch.name, err)


def _first_known(group: ExceptionGroup[Exception]) -> Exception:
    """The configuration or firmware error in ``group``, else the group itself."""
    for kind in ((HalConfigError, ConfigError), FirmwareError):
        found: Exception | None = group.subgroup(kind)
        while isinstance(found, ExceptionGroup):
            found = found.exceptions[0]
        if found is not None:
            return found
    return group


def _status(args: argparse.Namespace) -> int:
    base = args.api
    token = os.environ.get(TOKEN_ENV) or None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as err:
            print(f"chargepoint: configuration error: {logs.redact(str(err))}", file=sys.stderr)
            return EXIT_CONFIG
        if base is None:
            base = f"http://{_client_host(config.api.host)}:{config.api.port}"
        token = config.api.token or token
    base = (base or "http://127.0.0.1:8180").rstrip("/")
    request = urllib.request.Request(f"{base}/api/v1/status")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            data = json.load(response)
    except urllib.error.HTTPError as err:
        hint = f" (give the token: --config or ${TOKEN_ENV})" if err.code == 401 else ""
        print(f"chargepoint: {base} answered HTTP {err.code}{hint}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError) as err:
        print(f"chargepoint: cannot reach {base}: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print("\n".join(status_lines(data)))
    return 0


def _client_host(host: str) -> str:
    """Where a client reaches an API bound to ``host`` (any address: loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def duration(seconds: float) -> str:
    """``1d 2:03:04``, ``0:01:05``: the uptime as the web page writes it."""
    s = max(0, int(seconds))
    days, rest = divmod(s, 86400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def link_text(ocpp: dict[str, Any]) -> str:
    """The link to the CSMS in the words of the web page (times in UTC here)."""
    link = ocpp.get("link") or {"state": "connected" if ocpp.get("connected") else "connecting"}
    since = link.get("since")
    if link["state"] == "connected":
        return f"connected since {since}" if since else "connected"
    text = f"offline since {since}" if since else "offline"
    if link["state"] == "connecting":
        text += ", connecting"
    if link.get("retry_at"):
        text += f", next retry at {link['retry_at']}"
    if link.get("detail"):
        text += f" ({link['detail']})"
    return text


def status_lines(data: dict[str, Any]) -> list[str]:
    """The station summary of the web page, then one line per connector."""
    ocpp = data["ocpp"]
    station = data.get("station") or {}
    lines = [
        f"{data['charge_point_id']}: connected={ocpp['connected']} "
        f"registration={ocpp['registration']} queued={ocpp['queued']} "
        f"dropped={ocpp.get('dropped')} thinned={ocpp.get('thinned')}",
        f"  firmware {data.get('firmware_version')}, up {duration(data.get('uptime_s') or 0)}, "
        f"backend {data.get('hal_backend')}",
        f"  CSMS {data.get('csms_url')}: {link_text(ocpp)}, "
        f"{ocpp.get('reconnects', 0)} reconnect(s)",
        f"  station: {station.get('status')} ({station.get('error_code')}), "
        f"faults: {', '.join(station.get('faults') or []) or 'none'}",
    ]
    for c in data["connectors"]:
        relay = "closed" if c["relay_closed"] else "open"
        faults = ",".join(c.get("faults") or []) or "none"
        lines.append(
            f"  connector {c['id']}: {c['status']} ({c['error_code']}) "
            f"tx={c['transaction_id']} tag={c['id_tag']} relay={relay} "
            f"offered={c['offered_current_a']} A power={c['power_w']} W "
            f"energy={c['energy_wh']} Wh faults={faults}"
        )
    return lines
