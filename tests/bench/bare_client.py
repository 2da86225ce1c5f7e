"""A bare client built on the `ocpp` package: N CALLs one after the other, nothing durable.

python -m tests.bench.bare_client URL CP_ID COUNT
"""

from __future__ import annotations

import asyncio
import sys

from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.bench.common import meter_values


async def main(url: str, cp_id: str, count: int) -> None:
    async with connect(f"{url}/{cp_id}", subprotocols=[Subprotocol("ocpp1.6")]) as ws:
        cp = ChargePoint(cp_id, ws)
        reader = asyncio.create_task(cp.start())
        await cp.call(call.BootNotification(charge_point_model="Bare", charge_point_vendor="Bench"))
        at = "2026-01-01T00:00:00.000Z"
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="BE4C4", meter_start=1000, timestamp=at)
        )
        tx = started.transaction_id
        for i in range(count - 2):
            mv = meter_values(i, at)
            await cp.call(
                call.MeterValues(connector_id=1, meter_value=mv["meterValue"], transaction_id=tx)
            )
        await cp.call(
            call.StopTransaction(
                meter_stop=1000 + count, timestamp=at, transaction_id=tx, reason="Local"
            )
        )
        reader.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
