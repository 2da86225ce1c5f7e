"""``python -m hil``: run the bench scenarios against a charge point and report.

Either the runner starts the firmware itself on simulated or emulated hardware
(``--backend``), or it tests a station that is already running and pointed at this machine's
bench CSMS (``--station URL`` of its local API and/or ``--cp-id``), with the plant driven
through that local API or, on a real bench, by a person (``--operator``).

``--ocpp`` chooses the OCPP version of the run (1.6 by default): the bench CSMS speaks only
that one, a station the runner starts is configured for it, and a running station that
offers only the other one is told so at once.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp

from hil.bench import Bench
from hil.csms import BenchCsms, CallErrorReceived, format_frame
from hil.plant import LocalApiPlant, OperatorPlant, PlantDriver, PlantError
from hil.process import (
    HAL_OPTIONS,
    StationProcess,
    StationProcessError,
    deep_merge,
    version_overrides,
)
from hil.report import format_table, summary, write_junit
from hil.results import NotApplicable, Outcome, ScenarioFailed, ScenarioResult
from hil.scenario import Scenario, all_scenarios, select
from hil.versions import SUBPROTOCOLS, V16, V201

__all__ = ["main", "run_bench", "run_scenario", "run_station"]

DEFAULT_CP_ID = "HIL-CP-1"
Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _frames_since(bench: Bench, index: int) -> str:
    return "\n".join(format_frame(bench.cp_id, f, None) for f in bench.log.frames[index:])


async def run_scenario(
    bench: Bench, scenario: Scenario, *, limit: float | None = None
) -> tuple[ScenarioResult, str]:
    """Run one scenario from an idle station; returns its result and its OCPP frames."""
    began = time.monotonic()
    first_frame = len(bench.log.frames)
    violations = len(bench.log.violations)
    outcome, detail, note = Outcome.PASS, "", ""
    try:
        try:
            await bench.wait_idle()
        except (ScenarioFailed, TimeoutError) as err:
            try:
                note = f" [before it: {err}; recovered by {await bench.recover()}]"
            except (ScenarioFailed, TimeoutError, ConnectionError, StationProcessError) as again:
                raise PlantError(f"before the scenario: {err}; recovery failed: {again}") from err
        bench.mark()
        async with asyncio.timeout(limit):
            detail = await scenario.run(bench)
        new = bench.log.violations[violations:]
        if new:
            outcome, detail = Outcome.FAIL, "OCPP schema violations: " + "; ".join(new)
    except NotApplicable as err:
        outcome, detail = Outcome.NOT_APPLICABLE, str(err)
    except (AssertionError, TimeoutError, CallErrorReceived) as err:
        outcome, detail = Outcome.FAIL, str(err) or f"not finished within {limit} s"
    except Exception as err:  # the bench itself: report it and go on with the next scenario
        outcome, detail = Outcome.ERROR, f"{type(err).__name__}: {err}"
    try:
        await bench.restore()
    except (NotApplicable, PlantError) as err:
        detail += f" [restoring the plant: {err}]"
    result = ScenarioResult(
        scenario.name, outcome, time.monotonic() - began, detail + note, scenario.description
    )
    return result, _frames_since(bench, first_frame)


async def run_bench(
    bench: Bench,
    scenarios: Sequence[Scenario],
    *,
    progress: Progress = _stderr,
    limit: float | None = None,
) -> tuple[list[ScenarioResult], dict[str, str]]:
    """Run ``scenarios`` in order; returns the results and each scenario's OCPP frames."""
    results: list[ScenarioResult] = []
    outputs: dict[str, str] = {}
    for scenario in scenarios:
        progress(f"▶ {scenario.name}: {scenario.description}")
        result, frames = await run_scenario(bench, scenario, limit=limit)
        results.append(result)
        outputs[scenario.name] = frames
        line = result.detail.splitlines()[0] if result.detail else ""
        progress(f"  {result.outcome.value} in {result.seconds:.1f} s  {line}")
    return results, outputs


async def run_station(
    bench: Bench,
    scenarios: Sequence[Scenario],
    *,
    progress: Progress = _stderr,
    limit: float | None = None,
) -> tuple[list[ScenarioResult], dict[str, str]]:
    """Prepare a connected station (idle; with a load, meter values every second so sessions
    can be checked for energy), run ``scenarios``, and put its configuration back."""
    await bench.wait_idle()
    try:
        if bench.load:
            await bench.configure("MeterValueSampleInterval", "1")
        return await run_bench(bench, scenarios, progress=progress, limit=limit)
    finally:
        await bench.restore_config()


# --------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hil",
        description="Run the hardware-in-the-loop scenarios against a charge point over OCPP "
        "(through the bench CSMS) and print a pass/fail table.",
    )
    where = p.add_argument_group("the station")
    where.add_argument(
        "--backend",
        choices=sorted(HAL_OPTIONS),
        help="start the firmware here on this hardware backend (default: simulated, "
        "unless --station or --cp-id is given)",
    )
    where.add_argument(
        "--station", metavar="URL", help="local API of a running station (http://HOST:8180/api/v1)"
    )
    where.add_argument("--cp-id", help="its charge point id (default: from --station's status)")
    where.add_argument("--operator", action="store_true", help="a person does the plant actions")
    where.add_argument("--csms-host", help="bench CSMS address (default 127.0.0.1 / 0.0.0.0)")
    where.add_argument("--csms-port", type=int, help="bench CSMS port (default any / 9000)")
    what = p.add_argument_group("the run")
    what.add_argument(
        "--ocpp",
        choices=(V16, V201),
        default=V16,
        help="the OCPP version the bench CSMS speaks and the scenarios expect (1.6)",
    )
    what.add_argument("--only", metavar="NAME,NAME", help="run only these scenarios")
    what.add_argument("--list", action="store_true", help="list the scenarios and exit")
    what.add_argument("--tag", default="04A1B2C3", help="idTag of the bench card (hex UID)")
    what.add_argument(
        "--no-load", action="store_true", help="the EV simulator draws no current: no energy"
    )
    what.add_argument("--timeout", type=float, default=20.0, help="seconds per wait (20)")
    what.add_argument(
        "--connect-timeout", type=float, default=120.0, help="seconds to wait for a station"
    )
    what.add_argument("--junit", type=Path, metavar="PATH", help="write a JUnit XML report")
    what.add_argument("--workdir", type=Path, help="where a started station keeps its files")
    what.add_argument("-v", "--verbose", action="store_true", help="print every OCPP frame")
    return p


async def _cp_id_of(station: str) -> str:
    url = station.rstrip("/") + "/status"
    try:
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            r.raise_for_status()
            return str((await r.json())["charge_point_id"])
    except (aiohttp.ClientError, OSError, KeyError, ValueError) as err:
        raise PlantError(f"cannot read the charge point id from {url}: {err}") from err


class _Run:
    """One invocation: the CSMS, maybe a station process, the plant, the results."""

    def __init__(self, args: argparse.Namespace, scenarios: list[Scenario]) -> None:
        self.args = args
        self.scenarios = scenarios
        self.owned = args.station is None and args.cp_id is None
        self.backend = args.backend or "simulated"
        self.workdir: Path | None = None
        self.results: list[ScenarioResult] = []
        self.outputs: dict[str, str] = {}

    @property
    def properties(self) -> dict[str, str]:
        a = self.args
        station = f"{self.backend} (started by the runner)" if self.owned else str(a.station)
        return {
            "station": station,
            "ocpp": a.ocpp,
            "plant": "operator" if a.operator else "local API",
            "tag": a.tag,
        }

    async def execute(self) -> None:
        a = self.args
        host = a.csms_host or ("127.0.0.1" if self.owned else "0.0.0.0")
        port = a.csms_port if a.csms_port is not None else (0 if self.owned else 9000)
        csms = BenchCsms(host, port, heartbeat_interval=300, versions=[a.ocpp])
        if a.verbose:
            csms.printer = _stderr
        async with csms:
            if self.owned:
                await self._with_own_station(csms)
            else:
                await self._with_running_station(csms)

    async def _with_own_station(self, csms: BenchCsms) -> None:
        self.workdir = self.args.workdir or Path(tempfile.mkdtemp(prefix="hil-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        overrides = {"ocpp": {"charge_point_id": DEFAULT_CP_ID}}
        station = StationProcess(
            csms,
            self.workdir,
            deep_merge(overrides, version_overrides(self.args.ocpp)),
            backend=self.backend,
        )
        _stderr(f"starting the firmware ({self.backend}, OCPP {self.args.ocpp}) in {self.workdir}")
        await station.start(boot_timeout=self.args.connect_timeout)
        try:
            await self._bench(csms, station.cp_id, LocalApiPlant(station.api), station)
        finally:
            if station.running:
                await station.stop()

    async def _with_running_station(self, csms: BenchCsms) -> None:
        a = self.args
        cp_id = a.cp_id or await _cp_id_of(a.station)
        plant: PlantDriver
        if a.operator:
            plant = OperatorPlant(card_hint="the bench card")
        elif a.station:
            plant = LocalApiPlant(a.station)
        else:
            raise PlantError("give --station (a simulated or emulated plant) or --operator")
        url = csms.url.replace("0.0.0.0", socket.gethostname(), 1)
        _stderr(
            f"bench CSMS listening (OCPP {a.ocpp}): waiting for {cp_id} to connect to {url}/{cp_id}"
        )
        await _wait_station(csms, cp_id, a.ocpp, a.connect_timeout)
        await self._bench(csms, cp_id, plant, None)

    async def _bench(
        self, csms: BenchCsms, cp_id: str, plant: PlantDriver, owner: StationProcess | None
    ) -> None:
        a = self.args
        bench = Bench(
            csms,
            cp_id,
            plant,
            owner,
            tag=a.tag,
            timeout=a.timeout,
            load=not a.no_load,
            version=a.ocpp,
        )
        limit = None if a.operator else max(120.0, 6 * a.timeout)
        self.results, self.outputs = await run_station(bench, self.scenarios, limit=limit)


async def _wait_station(csms: BenchCsms, cp_id: str, version: str, timeout: float) -> None:
    """Until ``cp_id`` connects; PlantError at once if it offers only versions the bench
    does not speak in this run."""
    log = csms.station(cp_id)
    offers = len(log.unsupported_offers)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not log.connected:
        if len(log.unsupported_offers) > offers:
            offer = log.unsupported_offers[-1]
            offered = ", ".join(offer)
            others = [v for v, name in SUBPROTOCOLS.items() if name in offer]
            hint = f": run with --ocpp {others[0]}" if others else ""
            raise PlantError(
                f"{cp_id} offered {offered}; the bench speaks {SUBPROTOCOLS[version]} "
                f"(--ocpp {version}){hint}"
            )
        if loop.time() > deadline:
            raise TimeoutError(
                f"{cp_id} did not connect within {timeout}s "
                f"(connections so far: {log.connections}, refused: {log.rejections})"
            )
        await asyncio.sleep(0.05)


def _print_list() -> None:
    for s in all_scenarios():
        print(f"{s.name:<34} {s.description}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        _print_list()
        return 0
    if args.backend and (args.station or args.cp_id):
        parser.error("--backend starts a station; --station/--cp-id test a running one")
    if args.operator and not (args.station or args.cp_id):
        parser.error("--operator needs a running station (--station URL and/or --cp-id ID)")
    try:
        scenarios = select([n.strip() for n in args.only.split(",")] if args.only else None)
    except ValueError as err:
        parser.error(str(err))
    run = _Run(args, scenarios)
    setup_error: str | None = None
    try:
        asyncio.run(run.execute())
    except KeyboardInterrupt:
        setup_error = "interrupted"
    except (PlantError, StationProcessError, ScenarioFailed, TimeoutError, OSError) as err:
        setup_error = f"bench setup failed: {type(err).__name__}: {err}"
    results = run.results
    if setup_error is not None:
        _stderr(setup_error)
        done = {r.name for r in results}
        results = results + [
            ScenarioResult(s.name, Outcome.ERROR, 0.0, setup_error, s.description)
            for s in scenarios
            if s.name not in done
        ]
    print(format_table(results), flush=True)
    if args.junit is not None:
        write_junit(args.junit, results, properties=run.properties, outputs=run.outputs)
        _stderr(f"JUnit report: {args.junit}")
    ok = all(r.passed for r in results if r.applicable)
    if run.workdir is not None and args.workdir is None:
        if ok:
            shutil.rmtree(run.workdir, ignore_errors=True)
        else:
            _stderr(f"kept the station's files (daemon.log, cp.yaml, state/) in {run.workdir}")
    _stderr(summary(results))
    return 0 if ok else 1
