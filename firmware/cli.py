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

from firmware import __version__, hard_reset, logs, preflight, stop_signals
from firmware.config import Config, load_config
from firmware.errors import ConfigError, FirmwareError
from firmware.management.releases import ENV as RELEASE_ENV
from firmware.management.releases import Releases
from firmware.service_notify import ServiceNotifier
from hal.errors import HalConfigError

EXIT_CONFIG = 2

log = logging.getLogger("firmware.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargepoint", description="OCPP 1.6J charge point")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the charge point in the foreground")
    run.add_argument("--config", required=True, type=Path, help="YAML configuration file")
    status = sub.add_parser("status", help="show the status of a running charge point")
    status.add_argument("--config", type=Path, help="read the API address from this config")
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
    from firmware.app import App

    async def go() -> tuple[bool, bool]:
        app = App(config)
        # The key the CSMS set (persisted) and every later one are secrets too.
        logs.add_secret(app.ocpp_config.get("AuthorizationKey"))
        app.ocpp_config.subscribe(_secret_keys)
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


def _secret_keys(key: str, value: str) -> None:
    if key == "AuthorizationKey":
        logs.add_secret(value)


def _status(args: argparse.Namespace) -> int:
    base = args.api
    if base is None and args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as err:
            print(f"chargepoint: configuration error: {logs.redact(str(err))}", file=sys.stderr)
            return EXIT_CONFIG
        base = f"http://{config.api.host}:{config.api.port}"
    base = (base or "http://127.0.0.1:8180").rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/api/v1/status", timeout=5) as response:
            data = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as err:
        print(f"chargepoint: cannot reach {base}: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    ocpp = data["ocpp"]
    print(
        f"{data['charge_point_id']}: connected={ocpp['connected']} "
        f"registration={ocpp['registration']} queued={ocpp['queued']}"
    )
    for c in data["connectors"]:
        relay = "closed" if c["relay_closed"] else "open"
        print(
            f"  connector {c['id']}: {c['status']} ({c['error_code']}) "
            f"tx={c['transaction_id']} tag={c['id_tag']} relay={relay} "
            f"offered={c['offered_current_a']} A power={c['power_w']} W "
            f"energy={c['energy_wh']} Wh"
        )
    return 0
