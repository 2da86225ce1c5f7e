"""``GET /metrics``: the station in the Prometheus text format (version 0.0.4).

Written by hand: a few dozen lines of text do not need a client library on
the board. Names follow the Prometheus conventions: ``chargepoint_`` first,
base units (seconds, joules, watts, amperes, bytes), ``_total`` on counters;
states are one gauge per possible state (1 for the current one, 0 for the
others), so a missing series never stands for a state. Counters of the OCPP
link and of CALLs start at 0 when the daemon starts; the session counters and
the queue's dropped/thinned counts come from the state database and survive
restarts. The process figures have the names every exporter uses
(``process_cpu_seconds_total``, ``process_resident_memory_bytes``).
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from firmware.metrics import Histogram
from firmware.ocpp.call_stats import CallStats
from firmware.storage.db import Database

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CONNECTOR_STATUSES = (
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
)
STATION_STATUSES = ("Available", "Unavailable", "Faulted")  # connector 0
LINK_STATES = ("connecting", "connected", "offline")
REGISTRATION_STATES = ("Accepted", "Pending", "Rejected", "none")

Labels = dict[str, object]
StateRow = tuple[Labels, Iterable[str], object]


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Metric families in the text format, each with its HELP and TYPE lines."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2)}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Labels | None = None) -> None:
        if labels:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self._lines.append(f"{name}{{{inner}}} {_number(value)}")
        else:
            self._lines.append(f"{name} {_number(value)}")

    def one(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text)
        self.sample(name, value)

    def states(
        self,
        name: str,
        help_text: str,
        rows: Iterable[StateRow],
        label: str = "state",
    ) -> None:
        """One gauge per state: ``rows`` of (labels, every state, the current one)."""
        self.family(name, "gauge", help_text)
        for labels, states, current in rows:
            for state in states:
                self.sample(name, 1 if state == current else 0, {**labels, label: state})

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        self.family(name, "histogram", help_text)
        for bound, count in histogram.cumulative():
            # Bounds as prometheus_client writes them (1.0, not 1): one series per bucket.
            le = "+Inf" if math.isinf(bound) else repr(float(bound))
            self.sample(f"{name}_bucket", count, {"le": le})
        self.sample(f"{name}_sum", histogram.sum)
        self.sample(f"{name}_count", histogram.count)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _process(out: Exposition) -> None:
    out.one(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time of the daemon, in seconds.",
        time.process_time(),
    )
    try:
        with open("/proc/self/statm") as statm:
            size, resident = (int(f) for f in statm.read().split()[:2])
        page = resource.getpagesize()
        out.one(
            "process_resident_memory_bytes", "gauge", "Resident memory, in bytes.", resident * page
        )
        out.one("process_virtual_memory_bytes", "gauge", "Virtual memory, in bytes.", size * page)
        out.one(
            "process_open_fds", "gauge", "Open file descriptors.", len(os.listdir("/proc/self/fd"))
        )
    except (OSError, ValueError):  # not Linux: the peak is all getrusage tells
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out.one("process_max_resident_memory_bytes", "gauge", "Peak resident memory.", peak)


class StationMetrics:
    """Everything ``/metrics`` shows, from the API's status and a few counters."""

    def __init__(
        self,
        *,
        status: Callable[[], dict[str, Any]],
        calls: CallStats,
        taps: Histogram,
        db: Database,
        connections: Callable[[], int],
        started_at: float,
    ) -> None:
        self._status = status
        self._calls = calls
        self._taps = taps
        self._db = db
        self._connections = connections
        self._started_at = started_at

    def install(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self._serve)

    async def _serve(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.text().encode(), headers={"Content-Type": CONTENT_TYPE})

    def text(self) -> str:
        status = self._status()
        out = Exposition()
        self._station(out, status)
        self._link(out, status["ocpp"])
        self._connectors(out, status)
        self._sessions(out, [c["id"] for c in status["connectors"]])
        out.histogram(
            "chargepoint_tap_to_energize_seconds",
            "From the read of a token to the relay close command of the session it started.",
            self._taps,
        )
        _process(out)
        return out.text()

    def _station(self, out: Exposition, status: dict[str, Any]) -> None:
        out.family("chargepoint_info", "gauge", "The station: id, firmware version, backend.")
        out.sample(
            "chargepoint_info",
            1,
            {
                "charge_point_id": status["charge_point_id"],
                "firmware_version": status.get("firmware_version") or "",
                "hal_backend": status.get("hal_backend") or "",
            },
        )
        out.one(
            "chargepoint_start_time_seconds",
            "gauge",
            "When the daemon started (or restarted itself), in seconds since the epoch.",
            self._started_at,
        )

    def _link(self, out: Exposition, ocpp: dict[str, Any]) -> None:
        out.one(
            "chargepoint_ocpp_connected",
            "gauge",
            "1 while the websocket to the CSMS is open.",
            1 if ocpp["connected"] else 0,
        )
        out.states(
            "chargepoint_ocpp_link_state",
            "The link to the CSMS: connecting, connected or offline (waiting to retry).",
            [({}, LINK_STATES, ocpp["link"]["state"])],
        )
        out.states(
            "chargepoint_ocpp_registration_state",
            "The answer to the last BootNotification (none: no answer yet).",
            [({}, REGISTRATION_STATES, ocpp["registration"] or "none")],
            label="status",
        )
        connections = self._connections()
        out.one(
            "chargepoint_ocpp_connections_total",
            "counter",
            "Websocket connections made to the CSMS since the daemon started.",
            connections,
        )
        out.one(
            "chargepoint_ocpp_reconnects_total",
            "counter",
            "Connections made after the first one since the daemon started.",
            max(connections - 1, 0),
        )
        calls = self._calls
        out.family("chargepoint_ocpp_calls_sent_total", "counter", "CALLs sent to the CSMS.")
        for action, n in sorted(calls.sent.items()):
            out.sample("chargepoint_ocpp_calls_sent_total", n, {"action": action})
        out.family(
            "chargepoint_ocpp_calls_timed_out_total",
            "counter",
            "CALLs the CSMS did not answer in time.",
        )
        for action, n in sorted(calls.timed_out.items()):
            out.sample("chargepoint_ocpp_calls_timed_out_total", n, {"action": action})
        out.family(
            "chargepoint_ocpp_calls_failed_total",
            "counter",
            "CALLs answered by a CALLERROR or an invalid CALLRESULT, or cut off by a lost link.",
        )
        for (action, reason), n in sorted(calls.failed.items()):
            out.sample(
                "chargepoint_ocpp_calls_failed_total", n, {"action": action, "reason": reason}
            )
        out.one(
            "chargepoint_ocpp_queue_messages",
            "gauge",
            "Transaction messages waiting to be delivered.",
            ocpp["queued"],
        )
        out.one(
            "chargepoint_ocpp_queue_dropped_total",
            "counter",
            "Transaction messages given up after their attempts.",
            ocpp["dropped"],
        )
        out.one(
            "chargepoint_ocpp_queue_thinned_total",
            "counter",
            "MeterValues dropped to keep the queue within its bounds.",
            ocpp["thinned"],
        )

    def _connectors(self, out: Exposition, status: dict[str, Any]) -> None:
        connectors = status["connectors"]
        station = status["station"]
        out.states(
            "chargepoint_connector_status",
            "Connector status as reported to the CSMS (connector 0: the station).",
            [
                ({"connector": 0}, STATION_STATUSES, station["status"]),
                *(({"connector": c["id"]}, CONNECTOR_STATUSES, c["status"]) for c in connectors),
            ],
            label="status",
        )
        out.family("chargepoint_connector_error", "gauge", "The errorCode reported, as a label.")
        everything = [{**station, "id": 0}, *connectors]
        for c in everything:
            labels = {"connector": c["id"], "error_code": c["error_code"]}
            out.sample("chargepoint_connector_error", 1, labels)
        out.family("chargepoint_connector_faults", "gauge", "Hardware faults active now.")
        for c in everything:
            for fault in c["faults"]:
                labels = {"connector": c["id"], "fault": fault}
                out.sample("chargepoint_connector_faults", 1, labels)
        self._per_connector(
            out,
            connectors,
            "chargepoint_connector_energy_joules_total",
            "counter",
            "The energy meter's import register, in joules (Wh x 3600).",
            lambda c: None if c["energy_wh"] is None else c["energy_wh"] * 3600.0,
        )
        self._per_connector(
            out,
            connectors,
            "chargepoint_connector_session_energy_joules",
            "gauge",
            "Energy delivered in the running session, in joules (0 without one).",
            lambda c: (c.get("session_energy_wh") or 0.0) * 3600.0,
        )
        self._per_connector(
            out,
            connectors,
            "chargepoint_connector_power_watts",
            "gauge",
            "Active power measured by the meter.",
            lambda c: c["power_w"],
        )
        self._per_connector(
            out,
            connectors,
            "chargepoint_connector_offered_current_amperes",
            "gauge",
            "Current offered to the vehicle (PWM), per phase.",
            lambda c: c["offered_current_a"],
        )
        self._per_connector(
            out,
            connectors,
            "chargepoint_connector_limit_amperes",
            "gauge",
            "Smart charging limit per phase (absent while no profile limits the connector).",
            lambda c: c.get("limit_a"),
        )
        self._per_connector(
            out,
            connectors,
            "chargepoint_connector_relay_closed",
            "gauge",
            "1 while the contactor is commanded closed.",
            lambda c: 1 if c["relay_closed"] else 0,
        )

    @staticmethod
    def _per_connector(
        out: Exposition,
        connectors: list[dict[str, Any]],
        name: str,
        kind: str,
        help_text: str,
        value: Callable[[dict[str, Any]], float | None],
    ) -> None:
        out.family(name, kind, help_text)
        for c in connectors:
            v = value(c)
            if v is not None:
                out.sample(name, v, {"connector": c["id"]})

    def _sessions(self, out: Exposition, connector_ids: list[int]) -> None:
        started = dict.fromkeys(connector_ids, 0)
        stopped: dict[tuple[int, str], int] = {}
        rows = self._db.query(
            "SELECT connector_id, stop_reason, COUNT(*) AS n FROM transactions "
            "GROUP BY connector_id, stop_reason"
        )
        for row in rows:
            cid, reason, n = int(row["connector_id"]), row["stop_reason"], int(row["n"])
            started[cid] = started.get(cid, 0) + n
            if reason is not None:
                stopped[(cid, str(reason))] = n
        out.family(
            "chargepoint_sessions_started_total", "counter", "Transactions started, per connector."
        )
        for cid, n in sorted(started.items()):
            out.sample("chargepoint_sessions_started_total", n, {"connector": cid})
        out.family(
            "chargepoint_sessions_stopped_total",
            "counter",
            "Transactions stopped, per connector and OCPP stop reason.",
        )
        for (cid, reason), n in sorted(stopped.items()):
            labels = {"connector": cid, "reason": reason}
            out.sample("chargepoint_sessions_stopped_total", n, labels)
