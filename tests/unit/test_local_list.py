"""The Local Authorization List repository: SendLocalList rules, version, persistence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware.auth.cache import IdTagInfo
from firmware.auth.local_list import ListEntry, LocalAuthList, UpdateStatus
from firmware.errors import StorageError
from firmware.ocpp.errors import ProtocolViolation
from firmware.ocpp.v16.local_auth_list import LocalAuthListHandlers
from firmware.storage.db import Database

A = IdTagInfo("Accepted")
B = IdTagInfo("Blocked")


class Limits:
    """The configuration keys the list reads, changeable by a test."""

    def __init__(self) -> None:
        self.enabled = True
        self.max_length = 5
        self.send_max_length = 3


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


@pytest.fixture
def limits() -> Limits:
    return Limits()


def make(db: Database, limits: Limits) -> LocalAuthList:
    return LocalAuthList(
        db,
        enabled=lambda: limits.enabled,
        max_length=lambda: limits.max_length,
        send_max_length=lambda: limits.send_max_length,
    )


@pytest.fixture
def lst(db: Database, limits: Limits) -> LocalAuthList:
    return make(db, limits)


def entries(*pairs: tuple[str, IdTagInfo | None]) -> list[ListEntry]:
    return [ListEntry(tag, info) for tag, info in pairs]


def contents(lst: LocalAuthList, *tags: str) -> dict[str, str | None]:
    return {tag: (info.status if (info := lst.get(tag)) else None) for tag in tags}


def test_empty_list_is_version_zero(lst: LocalAuthList) -> None:
    assert lst.version == 0
    assert len(lst) == 0
    assert lst.get("AA01") is None


def test_full_replaces_the_list(lst: LocalAuthList) -> None:
    assert lst.update(3, full=True, entries=entries(("AA01", A), ("AA02", B))) == "Accepted"
    assert (lst.version, len(lst)) == (3, 2)
    assert lst.update(2, full=True, entries=entries(("AA03", A))) == "Accepted"
    assert contents(lst, "AA01", "AA02", "AA03") == {"AA01": None, "AA02": None, "AA03": "Accepted"}
    assert lst.version == 2  # a Full update may set any version


def test_full_without_entries_empties_the_list_and_reports_zero(lst: LocalAuthList) -> None:
    lst.update(4, full=True, entries=entries(("AA01", A)))
    assert lst.update(1, full=True, entries=[]) == "Accepted"
    assert (lst.version, len(lst)) == (0, 0)


def test_full_version_zero_without_entries_clears_the_list(lst: LocalAuthList) -> None:
    lst.update(4, full=True, entries=entries(("AA01", A), ("AA02", B)))
    assert lst.update(0, full=True, entries=[]) == "Accepted"
    assert (lst.version, contents(lst, "AA01", "AA02")) == (0, {"AA01": None, "AA02": None})
    assert lst.update(0, full=True, entries=[]) == "Accepted"  # an empty list stays empty
    assert lst.version == 0


def test_differential_version_zero_is_a_mismatch_even_on_an_empty_list(
    lst: LocalAuthList,
) -> None:
    assert lst.update(0, full=False, entries=entries(("AA01", A))) == "VersionMismatch"
    assert lst.update(-3, full=False, entries=[]) == "VersionMismatch"
    assert (lst.version, contents(lst, "AA01")) == (0, {"AA01": None})
    assert lst.update(1, full=False, entries=entries(("AA01", A))) == "Accepted"
    assert lst.version == 1


def test_differential_adds_replaces_and_removes(lst: LocalAuthList) -> None:
    lst.update(1, full=True, entries=entries(("AA01", A), ("AA02", A)))
    status = lst.update(2, full=False, entries=entries(("AA01", B), ("AA02", None), ("AA03", A)))
    assert status == "Accepted"
    assert contents(lst, "AA01", "AA02", "AA03") == {
        "AA01": "Blocked",
        "AA02": None,
        "AA03": "Accepted",
    }
    assert lst.version == 2


def test_differential_without_entries_changes_nothing_but_the_version(lst: LocalAuthList) -> None:
    lst.update(1, full=True, entries=entries(("AA01", A)))
    assert lst.update(5, full=False, entries=[]) == "Accepted"
    assert (lst.version, contents(lst, "AA01")) == (5, {"AA01": "Accepted"})


@pytest.mark.parametrize("version", [-1, 0, 1, 2])
def test_differential_needs_a_higher_version(lst: LocalAuthList, version: int) -> None:
    lst.update(2, full=True, entries=entries(("AA01", A)))
    assert lst.update(version, full=False, entries=entries(("AA01", B))) == "VersionMismatch"
    assert (lst.version, contents(lst, "AA01")) == (2, {"AA01": "Accepted"})


@pytest.mark.parametrize(
    ("full", "version", "update", "why"),
    [
        (True, 0, entries(("AA09", A)), "a list with entries at version 0"),
        (True, -4, entries(("AA09", A)), "a negative version"),
        (True, -1, [], "a negative version, even to empty the list"),
        (True, 7, entries(("AA09", A), ("aa09", B)), "duplicate idTag (case-insensitive)"),
        (False, 7, entries(("AA09", A), ("AA09", None)), "duplicate idTag"),
        (True, 7, entries(("AA09", A), ("AA08", None)), "Full entry without idTagInfo"),
        (
            True,
            7,
            entries(("X1", A), ("X2", A), ("X3", A), ("X4", A)),
            "over SendLocalListMaxLength",
        ),
        (False, 7, entries(("X1", A), ("X2", A), ("X3", A)), "over LocalAuthListMaxLength"),
    ],
)
def test_failed_update_leaves_the_old_list(
    lst: LocalAuthList, full: bool, version: int, update: list[ListEntry], why: str
) -> None:
    lst.update(2, full=True, entries=entries(("AA01", A), ("AA02", A), ("AA03", A)))
    assert lst.update(version, full=full, entries=update) == "Failed", why
    assert lst.version == 2
    assert contents(lst, "AA01", "AA02", "AA03", "AA09", "X1") == {
        "AA01": "Accepted",
        "AA02": "Accepted",
        "AA03": "Accepted",
        "AA09": None,
        "X1": None,
    }


def test_max_length_counts_the_resulting_list(lst: LocalAuthList, limits: Limits) -> None:
    limits.send_max_length = 10
    lst.update(1, full=True, entries=entries(*((f"T{i}", A) for i in range(5))))
    # Removing one and adding one keeps the list at its maximum.
    assert lst.update(2, full=False, entries=entries(("T0", None), ("T9", A))) == "Accepted"
    assert lst.update(3, full=False, entries=entries(("T8", A))) == "Failed"
    assert len(lst) == 5


def test_disabled_list_is_not_supported_and_kept(lst: LocalAuthList, limits: Limits) -> None:
    lst.update(1, full=True, entries=entries(("AA01", A)))
    limits.enabled = False
    assert not lst.enabled
    assert lst.update(2, full=True, entries=[]) == UpdateStatus.NOT_SUPPORTED
    limits.enabled = True
    assert (lst.version, contents(lst, "AA01")) == (1, {"AA01": "Accepted"})


def test_id_tags_match_case_insensitively(lst: LocalAuthList) -> None:
    lst.update(1, full=True, entries=entries(("04a1b2c3", A)))
    assert contents(lst, "04A1B2C3") == {"04A1B2C3": "Accepted"}
    lst.update(2, full=False, entries=entries(("04A1B2C3", B)))
    assert len(lst) == 1 and contents(lst, "04a1b2c3") == {"04a1b2c3": "Blocked"}


def test_entries_keep_expiry_and_parent(lst: LocalAuthList) -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    lst.update(1, full=True, entries=entries(("AA01", IdTagInfo("Accepted", past, "FLEET"))))
    stored = lst.get("AA01")
    assert stored == IdTagInfo("Accepted", past, "FLEET")
    assert stored.effective(past + timedelta(seconds=1)).status == "Expired"
    assert stored.effective(past - timedelta(seconds=1)).status == "Accepted"


def test_list_survives_reopening(tmp_path: Path, limits: Limits) -> None:
    first = Database(tmp_path / "state.db")
    make(first, limits).update(9, full=True, entries=entries(("AA01", B)))
    first.close()
    again = Database(tmp_path / "state.db")
    try:
        lst = make(again, limits)
        assert (lst.version, contents(lst, "AA01")) == (9, {"AA01": "Blocked"})
    finally:
        again.close()


def test_storage_error_fails_and_rolls_back(
    lst: LocalAuthList, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    lst.update(1, full=True, entries=entries(("AA01", A)))
    real = db.execute

    def failing(sql: str, params: object = ()) -> object:
        if sql.startswith("INSERT INTO local_auth_list_version"):
            raise StorageError("disk full")
        return real(sql, params)  # type: ignore[arg-type]

    monkeypatch.setattr(db, "execute", failing)
    assert lst.update(2, full=True, entries=entries(("AA02", A))) == "Failed"
    monkeypatch.undo()
    assert (lst.version, contents(lst, "AA01", "AA02")) == (1, {"AA01": "Accepted", "AA02": None})


def test_entry_from_payload() -> None:
    entry = ListEntry.from_payload(
        {
            "idTag": "AA01",
            "idTagInfo": {
                "status": "Blocked",
                "expiryDate": "2030-01-01T00:00:00Z",
                "parentIdTag": "P",
            },
        }
    )
    assert entry == ListEntry("AA01", IdTagInfo("Blocked", datetime(2030, 1, 1, tzinfo=UTC), "P"))
    assert ListEntry.from_payload({"idTag": "AA02"}) == ListEntry("AA02", None)


# ---------------------------------------------------------------- the OCPP handlers


async def test_handlers_answer_and_refuse_bad_values(lst: LocalAuthList, limits: Limits) -> None:
    handlers = LocalAuthListHandlers(lst)
    full = {"listVersion": 2, "updateType": "Full", "localAuthorizationList": [{"idTag": "AA01"}]}
    assert (await handlers.send_local_list(full)).payload == {"status": "Failed"}
    full["localAuthorizationList"] = [{"idTag": "AA01", "idTagInfo": {"status": "Accepted"}}]
    assert (await handlers.send_local_list(full)).payload == {"status": "Accepted"}
    assert (await handlers.get_local_list_version({})).payload == {"listVersion": 2}
    for bad, code in [
        ({"listVersion": 2**31, "updateType": "Full"}, "PropertyConstraintViolation"),
        (
            {
                "listVersion": 3,
                "updateType": "Differential",
                "localAuthorizationList": [
                    {"idTag": "AA02", "idTagInfo": {"status": "Accepted", "expiryDate": "soon"}}
                ],
            },
            "TypeConstraintViolation",
        ),
    ]:
        with pytest.raises(ProtocolViolation) as err:
            await handlers.send_local_list(bad)
        assert err.value.code == code
    assert (lst.version, contents(lst, "AA02")) == (2, {"AA02": None})
    limits.enabled = False
    assert (await handlers.get_local_list_version({})).payload == {"listVersion": -1}
    assert (await handlers.send_local_list(full)).payload == {"status": "NotSupported"}
