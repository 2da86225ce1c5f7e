"""OCPP 2.0.1 provisioning over the device model: B05 to B08.

SetVariables and GetVariables answer per entry (``device_model.operations``);
GetBaseReport and GetReport answer at once and the NotifyReport requests of the
report follow the answer, in seqNo order, one CALL at a time (B07.FR.01,
B08.FR.01). A request over DeviceDataCtrlr's ItemsPerMessage is answered with
``OccurrenceConstraintViolation`` (the Part 4 spelling), over its
BytesPerMessage with ``FormatViolation``. The size compared with
BytesPerMessage is the request's frame as the station would write it (compact
JSON), so a CSMS that pads its frames with whitespace is not refused for it.

A report whose delivery fails (the link drops, the CSMS answers a NotifyReport
with a CALLERROR) stops there and is logged; the CSMS asks again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from firmware.clock import Clock
from firmware.ocpp.errors import CallFailed, ProtocolViolation
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v201.device_model import (
    DeviceModel,
    Limit,
    LimitExceeded,
    Report,
    get_base_report,
    get_report,
    get_variables,
    set_variables,
)
from firmware.ocpp.versions import V201

log = logging.getLogger("firmware.ocpp.v201.provisioning")

# A CALL frame's bytes around its payload: [2,"<36-char id>","<action>",...]
_CALL_OVERHEAD = len('[2,"",""]') + 36


def frame_bytes(action: str, payload: dict[str, Any]) -> int:
    """The UTF-8 size of the CALL frame carrying ``payload``, written compactly."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return _CALL_OVERHEAD + len(action) + len(body.encode("utf-8"))


def _refusal(err: LimitExceeded) -> ProtocolViolation:
    code = "OccurrenceConstraintViolation" if err.limit is Limit.ITEMS else "FormatViolation"
    return ProtocolViolation(code, str(err))


# What to run once a SetVariables answer is out, for a variable it changed (a reconnect).
AfterSet = Callable[[str, str], Callable[[], Coroutine[Any, Any, None]] | None]


class ProvisioningHandlers:
    def __init__(
        self,
        model: DeviceModel,
        rpc: Rpc,
        clock: Clock,
        *,
        after_set: AfterSet = lambda _component, _variable: None,
    ) -> None:
        self.model = model
        self.rpc = rpc
        self.clock = clock
        self.after_set = after_set

    def register(self, rpc: Rpc) -> None:
        rpc.on("GetVariables", self.get_variables, version=V201)
        rpc.on("SetVariables", self.set_variables, version=V201)
        rpc.on("GetBaseReport", self.get_base_report, version=V201)
        rpc.on("GetReport", self.get_report, version=V201)

    async def get_variables(self, req: dict[str, Any]) -> Reply:
        try:
            answer = get_variables(self.model, req, message_bytes=frame_bytes("GetVariables", req))
        except LimitExceeded as err:
            raise _refusal(err) from None
        return Reply(answer)

    async def set_variables(self, req: dict[str, Any]) -> Reply:
        try:
            answer = set_variables(self.model, req, message_bytes=frame_bytes("SetVariables", req))
        except LimitExceeded as err:
            raise _refusal(err) from None
        after = None
        for result in answer["setVariableResult"]:
            if result["attributeStatus"] == "Accepted":
                name = result["component"]["name"], result["variable"]["name"]
                after = self.after_set(*name) or after
        return Reply(answer, after=after)

    async def get_base_report(self, req: dict[str, Any]) -> Reply:
        report = get_base_report(self.model, req, now=self.clock.now())
        return self._answer(report, req["requestId"])

    async def get_report(self, req: dict[str, Any]) -> Reply:
        try:
            report = get_report(
                self.model, req, now=self.clock.now(), message_bytes=frame_bytes("GetReport", req)
            )
        except LimitExceeded as err:
            raise _refusal(err) from None
        return self._answer(report, req["requestId"])

    def _answer(self, report: Report, request_id: int) -> Reply:
        if not report.notify_reports:
            return Reply(report.response)

        async def deliver() -> None:
            await self._deliver(report, request_id)

        return Reply(report.response, after=deliver)

    async def _deliver(self, report: Report, request_id: int) -> None:
        total = len(report.notify_reports)
        for payload in report.notify_reports:
            try:
                await self.rpc.call("NotifyReport", payload, version=V201)
            except CallFailed as err:
                log.warning(
                    "report %d stopped at NotifyReport %d of %d: %s",
                    request_id,
                    payload["seqNo"],
                    total,
                    err,
                )
                return
        log.info("report %d sent in %d NotifyReport request(s)", request_id, total)
