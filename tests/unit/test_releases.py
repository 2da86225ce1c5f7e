"""Firmware releases: which one a start runs, the trial, its confirmation and its rollback;
what the release installer accepts as a file and what it copies."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from firmware.management.commands import InstallFailed
from firmware.management.release_installer import collect_wheels, dependencies, normalize
from firmware.management.releases import ENV, MANIFEST, Launch, Releases, newest_migration

WHEEL = "chargepoint_firmware-{v}-py3-none-any.whl"


def make_release(state: Path, name: str, migrations: int = 0) -> Path:
    """A release directory as the installer leaves it (a stand-in python, the manifest)."""
    root = state / "releases" / name
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").write_text("#!/bin/sh\n")
    (root / MANIFEST).write_text(json.dumps({"version": name}))
    folder = root / "lib/python3.11/site-packages/firmware/storage/migrations"
    folder.mkdir(parents=True)
    for n in range(1, migrations + 1):
        (folder / f"{n:04d}_step.sql").write_text("")
    return root


def as_process(state: Path, name: str | None) -> Releases:
    """The Releases of a process running release ``name`` (None: the installed firmware)."""
    prefix = state / "releases" / name if name else state / "opt-venv"
    return Releases(state, prefix=prefix)


def test_nothing_built_runs_the_installed_firmware(tmp_path: Path) -> None:
    assert as_process(tmp_path, None).choose({}) is None
    assert not (tmp_path / "releases").exists()  # a start writes nothing


def test_the_current_release_runs_and_does_not_start_itself_again(tmp_path: Path) -> None:
    make_release(tmp_path, "r1")
    installed = as_process(tmp_path, None)
    installed.stage("r1")
    assert installed.choose({}) == Launch("r1", tmp_path / "releases/r1/bin/python")
    r1 = as_process(tmp_path, "r1")
    assert r1.choose({ENV: "r1"}) is None and r1.trial_running() == "r1"
    assert r1.confirm() and r1.pointer("current") == "r1" and r1.pointer("trial") is None
    # From now on every start of the installed firmware hands over to r1 ...
    assert installed.choose({}) == Launch("r1", tmp_path / "releases/r1/bin/python")
    # ... and r1, after a Reset (re-executed in place), goes on.
    assert r1.choose({ENV: "r1"}) is None and r1.choose({}) is None
    assert not r1.confirm()  # no trial


def test_a_trial_that_does_not_come_up_is_rolled_back(tmp_path: Path) -> None:
    make_release(tmp_path, "r1")
    r1 = as_process(tmp_path, "r1")
    r1.stage("r1")
    assert r1.confirm()
    make_release(tmp_path, "r2")  # built by r1 from a firmware update
    r1.stage("r2")
    installed = as_process(tmp_path, None)
    assert installed.choose({}) == Launch("r2", tmp_path / "releases/r2/bin/python")
    # r2 crashed before its BootNotification was accepted; systemd starts the unit again.
    assert installed.choose({}) == Launch("r1", tmp_path / "releases/r1/bin/python")
    assert not (tmp_path / "releases/r2").exists()
    assert installed.pointer("trial") is None and installed.pointer("current") == "r1"
    # r1 learns what happened, once.
    assert r1.take_rollback_note() == "r2 did not come up"
    assert r1.take_rollback_note() is None


def test_a_trial_rolled_back_without_a_current_release_runs_the_installed_one(
    tmp_path: Path,
) -> None:
    make_release(tmp_path, "r1")
    installed = as_process(tmp_path, None)
    installed.stage("r1")
    assert installed.choose({}) is not None
    # The trial's process is r1 but a start without the environment mark is not
    # the launcher's hand-over: it is a new start after the trial died.
    assert as_process(tmp_path, "r1").choose({}) is None
    assert installed.choose({}) is None
    assert installed.take_rollback_note() == "r1 did not come up"


def test_an_incomplete_trial_is_never_started(tmp_path: Path) -> None:
    make_release(tmp_path, "r1")
    (tmp_path / "releases/r1" / MANIFEST).unlink()
    installed = as_process(tmp_path, None)
    installed.stage("r1")
    assert installed.choose({}) is None
    assert installed.take_rollback_note() == "r1 is incomplete"


def test_a_confirmation_cut_short_by_a_power_cut_keeps_the_release(tmp_path: Path) -> None:
    make_release(tmp_path, "r1")
    installed = as_process(tmp_path, None)
    installed.stage("r1")
    installed.choose({})
    (tmp_path / "releases/current").symlink_to("r1")  # confirmed, trial not yet cleared
    assert installed.choose({}) == Launch("r1", tmp_path / "releases/r1/bin/python")
    assert installed.pointer("trial") is None and installed.take_rollback_note() is None


def test_confirming_keeps_the_current_and_the_previous_release(tmp_path: Path) -> None:
    for name in ("r1", "r2", "r3"):
        make_release(tmp_path, name)  # each built by the one before
        process = as_process(tmp_path, name)
        process.stage(name)
        assert process.confirm()
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == ["current", "r2", "r3"]


def test_releases_are_dropped_when_the_installed_firmware_changes(tmp_path: Path) -> None:
    make_release(tmp_path, "r1")
    installed = as_process(tmp_path, None)
    installed.stage("r1")
    assert installed.choose({}) is not None
    assert as_process(tmp_path, "r1").confirm()
    assert installed.choose({}) == Launch("r1", tmp_path / "releases/r1/bin/python")
    # scripts/install.sh or a new container image put another firmware in place.
    upgraded = Releases(tmp_path, prefix=tmp_path / "opt-venv-2")
    assert upgraded.choose({}) is None
    assert upgraded.pointer("current") is None and not (tmp_path / "releases/r1").exists()
    assert upgraded.choose({}) is None  # and stays so


def test_a_rollback_puts_back_the_database_the_trial_migrated(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version=6")
        conn.execute("CREATE TABLE kept (x)")
        conn.execute("INSERT INTO kept VALUES (1)")
    make_release(tmp_path, "r2", migrations=7)
    assert newest_migration(tmp_path / "releases/r2") == 7
    installed = as_process(tmp_path, None)
    installed.stage("r2")
    assert installed.choose({}) is not None
    assert (tmp_path / "releases/state-before-trial.db").exists()
    with sqlite3.connect(db) as conn:  # what the trial did before it died
        conn.execute("PRAGMA user_version=7")
        conn.execute("DELETE FROM kept")
    installed.choose({})
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]
    assert not (tmp_path / "releases/state-before-trial.db").exists()


def test_no_copy_of_the_database_when_the_trial_does_not_migrate_it(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version=7")
    make_release(tmp_path, "r2", migrations=7)
    installed = as_process(tmp_path, None)
    installed.stage("r2")
    assert installed.choose({}) is not None
    assert not (tmp_path / "releases/state-before-trial.db").exists()


# ---------------------------------------------------------------- the installer's input


def wheel(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"PK")
    return path


def bundle(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_wheel_of_the_firmware_is_installed_with_its_version(tmp_path: Path) -> None:
    found = collect_wheels(wheel(tmp_path / "dl", WHEEL.format(v="1.2.0")), tmp_path / "work")
    assert (found.firmware.name, found.version, found.directory) == (
        WHEEL.format(v="1.2.0"),
        "1.2.0",
        tmp_path / "dl",
    )


def test_a_bundle_brings_the_firmware_and_its_new_dependencies(tmp_path: Path) -> None:
    archive = bundle(
        tmp_path / "fw.tar.gz",
        {
            "release/" + WHEEL.format(v="2.0.0"): b"PK",
            "release/yarl-9.9-py3-none-any.whl": b"PK",
            "../../etc/evil-1.0-py3-none-any.whl": b"PK",  # kept by its base name only
            "release/README": b"not a wheel",
        },
    )
    found = collect_wheels(archive, tmp_path / "work")
    assert found.version == "2.0.0" and found.directory == tmp_path / "work"
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [
        WHEEL.format(v="2.0.0"),
        "evil-1.0-py3-none-any.whl",
        "yarl-9.9-py3-none-any.whl",
    ]
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize(
    ("name", "members", "message"),
    [
        ("image.bin", None, "neither a wheel"),
        ("other-1.0-py3-none-any.whl", None, "needs exactly one wheel of chargepoint-firmware"),
        (
            "two.tar",
            {WHEEL.format(v="1"): b"", "x/" + WHEEL.format(v="2"): b""},
            "needs exactly one wheel",
        ),
        ("twice.tar", {"a/" + WHEEL.format(v="1"): b"", "b/" + WHEEL.format(v="1"): b""}, "twice"),
        ("broken.tgz", b"not a tar archive", "not a readable tar archive"),
    ],
)
def test_files_the_release_installer_refuses(
    tmp_path: Path, name: str, members: dict[str, bytes] | bytes | None, message: str
) -> None:
    path = tmp_path / name
    if isinstance(members, dict):
        bundle(path, members)
    else:
        path.write_bytes(members or b"PK")
    with pytest.raises(InstallFailed, match=message):
        collect_wheels(path, tmp_path / "work")


def test_the_dependencies_copied_are_the_runtime_tree_only() -> None:
    names = {normalize(d.metadata["Name"]) for d in dependencies()}
    assert {"aiohttp", "yarl", "cryptography", "ocpp", "pyyaml", "cffi"} <= names
    assert not names & {"pytest", "mypy", "ruff", "hypothesis", "chargepoint-firmware", "pip"}
