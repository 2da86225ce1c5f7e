"""The ``release`` installer: each new firmware becomes an environment of its own.

Built under ``<state_dir>/releases/<version>-<UTC time>`` by the daemon itself,
without privileges, the network or a compiler:

1. the file is a wheel of this firmware (``chargepoint_firmware-<version>-….whl``)
   or a tar archive (``.tar``, ``.tar.gz``, ``.tgz``) of wheels holding exactly
   one such wheel and any dependency it needs that the running firmware lacks;
2. ``<base python> -m venv --without-pip`` makes the environment (the
   interpreter the running environment was made from);
3. the running firmware's dependencies are copied into it from the running
   environment (the files their ``RECORD`` lists);
4. pip, from the running environment or the base interpreter (``python3-pip``
   on a board), installs the firmware wheel there offline (``--no-index
   --find-links`` the wheels): dependencies already copied are kept when they
   fit, the archive's replace or complete them, anything else missing fails;
5. the new firmware must import and tell its version;
6. the release becomes the trial the restart runs (releases.py), kept once the
   CSMS accepts its BootNotification, rolled back if it does not come up.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import os
import re
import shutil
import sys
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from firmware.management.commands import InstallFailed, run_logged
from firmware.management.releases import CURRENT, MANIFEST, Releases

log = logging.getLogger("firmware.management.install")

DISTRIBUTION = "chargepoint-firmware"
MAX_ARCHIVE_MEMBERS = 1000
CHECK_TIMEOUT_S = 120.0
_WHEEL = re.compile(
    r"^(?P<dist>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)(-[0-9][^-]*)?"
    r"-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+\.whl$"
)
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_ARCHIVES = (".tar", ".tar.gz", ".tgz")
# Variables that would make the new environment's Python look elsewhere.
_FOREIGN = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONUSERBASE")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@dataclass(frozen=True, slots=True)
class Wheels:
    """The firmware wheel to install and the directory pip may take wheels from."""

    firmware: Path
    version: str
    directory: Path


def collect_wheels(file: Path, work: Path) -> Wheels:
    """The wheels the downloaded file holds; raises InstallFailed naming the problem."""
    if file.name.endswith(".whl"):
        wheels = [file]
        directory = file.parent
    elif file.name.endswith(_ARCHIVES):
        wheels = unpack_wheels(file, work)
        directory = work
    else:
        raise InstallFailed(f"{file.name} is neither a wheel (*.whl) nor a tar archive of wheels")
    ours = []
    for wheel in wheels:
        match = _WHEEL.match(wheel.name)
        if match and normalize(match["dist"]) == DISTRIBUTION:
            ours.append((wheel, match["version"]))
    if len(ours) != 1:
        found = ", ".join(w.name for w in wheels) or "no wheel"
        raise InstallFailed(
            f"{file.name}: needs exactly one wheel of {DISTRIBUTION}, found {found}"
        )
    return Wheels(ours[0][0], ours[0][1], directory)


def unpack_wheels(archive: Path, into: Path) -> list[Path]:
    """The ``*.whl`` regular files of a tar archive, by their base names only."""
    into.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_ARCHIVE_MEMBERS:
                    raise InstallFailed(f"{archive.name}: more than {MAX_ARCHIVE_MEMBERS} entries")
                name = PurePosixPath(member.name).name
                if not member.isfile() or not _WHEEL.match(name):
                    continue
                target = into / name
                if target.exists():
                    raise InstallFailed(f"{archive.name}: {name} appears twice")
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
                found.append(target)
    except (tarfile.TarError, EOFError) as err:
        raise InstallFailed(f"{archive.name} is not a readable tar archive: {err}") from None
    return found


def dependencies() -> list[importlib.metadata.Distribution]:
    """The running firmware's dependencies, transitively, as installed here.

    Requirements of extras (``; extra == "test"``) are left out; other markers are
    not evaluated: such a requirement counts when it is installed.
    """
    installed: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            installed.setdefault(normalize(name), dist)
    root = installed.get(DISTRIBUTION)
    if root is None:
        raise InstallFailed(f"{DISTRIBUTION} is not installed here: no dependencies to copy")
    seen = {DISTRIBUTION}
    todo, found = [root], []
    while todo:
        for requirement in todo.pop().requires or []:
            if "extra" in requirement.partition(";")[2]:
                continue
            match = _REQUIREMENT.match(requirement)
            name = normalize(match.group(1)) if match else ""
            if name in installed and name not in seen:
                seen.add(name)
                found.append(installed[name])
                todo.append(installed[name])
    return found


def copy_distributions(dists: list[importlib.metadata.Distribution], site: Path) -> int:
    """Copy (or hard-link) every file of ``dists`` inside their site-packages to ``site``;
    the bytes copied."""
    copied = 0
    for dist in dists:
        files = dist.files
        if files is None:
            raise InstallFailed(f"{dist.metadata['Name']} has no RECORD: it cannot be copied")
        for entry in files:
            relative = Path(str(entry))
            if relative.is_absolute() or ".." in relative.parts:
                continue  # scripts outside site-packages: the firmware needs none of them
            source = Path(str(dist.locate_file(entry)))
            if not source.is_file():
                continue
            target = site / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                # Releases built one from another share their unchanged files: nothing
                # writes into an installed file (pip and Python replace files whole).
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
                copied += source.stat().st_size
    return copied


def base_python() -> str:
    """The interpreter the running environment was made from."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


async def output_of(argv: list[str], what: str) -> str:
    """The standard output of a short check; raises InstallFailed if it fails."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=clean_env(),
        )
    except OSError as err:
        raise InstallFailed(f"cannot start {what}: {err.strerror or err}") from err
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise InstallFailed(f"{what} did not finish within {CHECK_TIMEOUT_S:g} s") from None
    text = out.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        last = text.splitlines()[-1] if text else "no output"
        raise InstallFailed(f"{what} failed (exit code {proc.returncode}): {last}")
    return text


async def pip_python() -> str:
    """An interpreter with pip: the running environment's, else the base one's."""
    for python in dict.fromkeys([sys.executable, base_python()]):
        try:
            await output_of([python, "-m", "pip", "--version"], "pip")
            return python
        except InstallFailed:
            continue
    raise InstallFailed("no pip to install with (on Debian: apt-get install python3-pip)")


class ReleaseInstaller:
    name = "release"

    def __init__(self, releases: Releases, ready: asyncio.Event, timeout_s: float) -> None:
        self.releases = releases
        self.ready = ready
        self.timeout_s = timeout_s

    async def install(self, file: Path) -> None:
        root = self.releases.root
        work = root / ".unpacked"
        target: Path | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                root.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(work, ignore_errors=True)
                wheels = await asyncio.to_thread(collect_wheels, file, work)
                target = _new_release_dir(root, wheels.version)
                await self._build(target, wheels)
        except TimeoutError:
            raise InstallFailed(f"building the release took over {self.timeout_s:g} s") from None
        except OSError as err:
            raise InstallFailed(f"cannot build the release: {err}") from err
        except BaseException:
            if target is not None:
                shutil.rmtree(target, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        assert target is not None
        self.releases.stage(target.name)
        log.warning("firmware release %s built; it runs from the restart on", target.name)

    async def _build(self, target: Path, wheels: Wheels) -> None:
        try:
            env = clean_env()
            venv = [base_python(), "-m", "venv", "--without-pip", str(target)]
            await run_logged(venv, None, self.timeout_s, "venv", env=env)
            python = str(target / "bin" / "python")
            site = Path(
                await output_of(
                    [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                    "the new environment",
                )
            )
            dists = await asyncio.to_thread(dependencies)
            copied = await asyncio.to_thread(copy_distributions, dists, site)
            log.info("copied %d dependencies (%d bytes) into %s", len(dists), copied, target.name)
            pip = [await pip_python(), "-m", "pip", "--python", python, "install"]
            pip += ["--quiet", "--no-index", "--find-links", str(wheels.directory)]
            pip += ["--no-cache-dir"]
            pip += ["--no-warn-script-location", str(wheels.firmware)]
            await run_logged(pip, None, self.timeout_s, "pip install", env=env)
            probe = "import firmware.app, importlib.metadata as m; print(m.version(%r))"
            version = await output_of(
                [python, "-c", probe % DISTRIBUTION], "the new firmware's self-check"
            )
            log.info("the new firmware imports and reports version %s", version.splitlines()[-1])
            manifest = {"version": version.splitlines()[-1], "wheel": wheels.firmware.name}
            manifest["built"] = datetime.now(UTC).isoformat(timespec="seconds")
            (target / MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    async def activated(self) -> bool:
        """True once the new release runs and the CSMS accepted its BootNotification."""
        note = self.releases.take_rollback_note()
        if note is not None:
            log.error("the new firmware release did not come up and was rolled back: %s", note)
            return False
        trial = self.releases.trial_running()
        if trial is not None:
            log.warning(
                "running firmware release %s on trial: kept once the CSMS accepts its "
                "BootNotification",
                trial,
            )
            await self.ready.wait()
            return self.releases.confirm()
        running = self.releases.running()
        return running is not None and running == self.releases.pointer(CURRENT)


def _new_release_dir(root: Path, version: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = re.sub(r"[^A-Za-z0-9._+-]", "_", version)[:60] + "-" + stamp
    candidate, n = root / base, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{base}-{n}"
    return candidate
