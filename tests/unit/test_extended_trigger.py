"""ExtendedTriggerMessage: a table of requestedMessage → sender, answered before it is sent."""

from __future__ import annotations

from firmware.ocpp.v16.extended_trigger import ExtendedTriggerHandlers


async def test_the_table_decides_the_answer_and_the_sender_runs_after_it() -> None:
    sent: list[int | None] = []

    async def sign(connector_id: int | None) -> None:
        sent.append(connector_id)

    triggers = ExtendedTriggerHandlers()
    triggers.add("SignChargePointCertificate", sign)
    triggers.add("StatusNotification", sign, connector_ok=lambda n: n in (0, 1))

    reply = await triggers.extended_trigger_message(
        {"requestedMessage": "SignChargePointCertificate"}
    )
    assert reply.payload == {"status": "Accepted"} and sent == []
    assert reply.after is not None
    await reply.after()
    assert sent == [None]

    reply = await triggers.extended_trigger_message(
        {"requestedMessage": "StatusNotification", "connectorId": 7}
    )
    assert reply.payload == {"status": "Rejected"} and reply.after is None

    reply = await triggers.extended_trigger_message({"requestedMessage": "LogStatusNotification"})
    assert reply.payload == {"status": "NotImplemented"} and reply.after is None
