"""``make systemd-check``: the service installed by scripts/install.sh under a real systemd.

Boots systemd (PID 1 of its own PID namespace, chrooted) in a Debian bookworm root
that has no ``gpio`` group, installs the checkout there with ``scripts/install.sh``
and checks, against a bench CSMS running in this process:

- the install creates the user and its groups, and the service starts (no 216/GROUP);
- READY: ``systemctl is-active`` is ``active`` once the start job returned (Type=notify);
- the status line (``StatusText``) reaches ``online: ... boot accepted``;
- the process has the ``gpio`` and ``dialout`` groups;
- Reset Soft is a reload: same main PID, no restart counted, a second BootNotification;
- a hung process (SIGSTOP) is killed by the watchdog and restarted (``NRestarts`` + 1);
- UpdateFirmware with a wheel of the checkout under another version, through the
  default (release) installer as the service's user: Installed, the new version in the
  BootNotification, the same main PID, no restart counted, ``/opt`` (mounted read-only
  for the update) untouched;
- ``systemctl stop`` exits 0 and the daemon with it (exit status 0, result success).

Needs root, ``debootstrap``, ``unshare``/``nsenter`` and, the first time, Debian's
package mirror (``CHECK_MIRROR`` overrides the one apt uses here) for the root, about
330 MB, kept in ``CHECK_ROOT`` (default /var/tmp/chargepoint-systemd-root) for the
next run. PyPI (or ``pip download``'s index) is used on this side only: the root
installs offline from the wheels of constraints.txt.

Mount-namespace hardening (ProtectSystem=, PrivateTmp=, ...) cannot be set up in such
a root on every machine (it fails with 226/NAMESPACE): a drop-in turns those settings
off there (tests/deploy/test_systemd_unit.py verifies them with systemd-analyze), and
shortens the watchdog to 4 s so the hung process is found quickly.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from firmware.clock import iso
from hil.csms import BenchCsms
from hil.station_log import StationLog
from tests.deploy.conftest import build_wheel, copy_source, wheelhouse_requirements
from tests.integration.file_servers import http_server

ROOT = Path(__file__).resolve().parents[2]
CHECK_ROOT = Path(os.environ.get("CHECK_ROOT", "/var/tmp/chargepoint-systemd-root"))
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,ca-certificates"
CP_ID = "CP-SYSTEMD"
UNIT = "chargepoint"
OTA_VERSION = "0.0.0+systemd.check"

DROP_IN = """\
# make systemd-check: this machine cannot set up mount namespaces for a service
# in a chrooted systemd (226/NAMESPACE); a quick watchdog for the hung-process check.
[Service]
ProtectSystem=no
ProtectHome=no
PrivateTmp=no
PrivateMounts=no
PrivateIPC=no
ProtectKernelTunables=no
ProtectKernelModules=no
ProtectKernelLogs=no
ProtectControlGroups=no
ProtectClock=no
ProtectHostname=no
ProtectProc=default
WatchdogSec=4s
RestartSec=1s
"""


class CheckFailed(Exception):
    pass


def say(text: str) -> None:
    print(f"systemd-check: {text}", flush=True)


def mirror() -> str:
    """The Debian mirror apt uses on this machine (enabled sources only)."""
    if "CHECK_MIRROR" in os.environ:
        return os.environ["CHECK_MIRROR"]
    sources = Path("/etc/apt/sources.list")
    lines = sources.read_text().splitlines() if sources.exists() else []
    for line in lines:
        parts = line.split()
        if len(parts) > 1 and parts[0] == "deb" and "debian" in line:
            return parts[1]
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "debian" in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def bootstrap(root: Path) -> None:
    if (root / "lib/systemd/systemd").exists():
        return
    if shutil.which("debootstrap") is None:
        raise CheckFailed("debootstrap is missing: apt-get install debootstrap")
    say(f"debootstrap bookworm into {root} (first run: a minute or two)")
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm"]
    subprocess.run([*command, str(partial), mirror()], check=True, stdout=subprocess.DEVNULL)
    partial.rename(root)


class BootedRoot:
    """systemd as PID 1 of a new PID, mount and UTS namespace, chrooted into ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.console = root.with_name(root.name + ".console.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def boot(self) -> None:
        r = self.root
        script = (
            f"mount -t proc proc {r}/proc && mount --rbind /sys {r}/sys && "
            f"mount --rbind /dev {r}/dev && mount -t tmpfs tmpfs {r}/run && "
            f"mount -t tmpfs tmpfs {r}/tmp && "
            f"exec chroot {r} /usr/bin/env container=other /lib/systemd/systemd --system"
        )
        unshare = ["unshare", "--pid", "--fork", "--mount", "--uts", "--propagation", "private"]
        with self.console.open("wb") as console:
            self.proc = subprocess.Popen(
                [*unshare, "sh", "-c", script], stdout=console, stderr=subprocess.STDOUT
            )
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            child = children.read_text().split() if children.exists() else []
            if child and _cmdline(int(child[0])).startswith("/lib/systemd/systemd"):
                self.pid = int(child[0])
                break
            time.sleep(0.1)
        else:
            raise CheckFailed(f"systemd did not start; see {self.console}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise CheckFailed(f"the root's systemd did not finish booting; see {self.console}")

    def run(
        self, *command: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", "chroot", str(self.root), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise CheckFailed(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def show(self, prop: str) -> str:
        return self.run("systemctl", "show", UNIT, "-p", prop, "--value").stdout.strip()

    def poweroff(self) -> None:
        if self.proc is None:
            return
        self.run("systemctl", "poweroff", "--force", "--force", check=False, timeout=30)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.3)
    raise CheckFailed(f"timed out after {timeout:g} s waiting for {what}")


def ok(text: str) -> None:
    say(f"ok: {text}")


def prepare(root: BootedRoot, csms_url: str) -> None:
    """A clean slate (no earlier install, no gpio group), the checkout, its wheels, the
    configuration and the drop-in, before install.sh runs."""
    if (root.root / "opt/chargepoint").exists():
        root.run("sh", "/root/src/scripts/install.sh", "--uninstall", "--purge", check=False)
    for group in ("gpio", UNIT):
        if root.run("getent", "group", group, check=False).returncode == 0:
            root.run("groupdel", group)
    say("the root has no gpio group")
    src = root.root / "root/src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build"),
    )
    wheels = root.root / "root/wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write(wheelhouse_requirements())
        requirements.flush()
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        download = subprocess.run(
            [*pip, "--no-deps", "--only-binary=:all:", "-d", str(wheels), "-r", requirements.name],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if download.returncode != 0:
            raise CheckFailed(f"pip download failed:\n{download.stdout}{download.stderr}")
    etc = root.root / "etc/chargepoint"
    etc.mkdir(parents=True, exist_ok=True)
    config = etc / "chargepoint.yaml"
    config.write_text(
        f"ocpp:\n  csms_url: {csms_url}\n  charge_point_id: {CP_ID}\n"
        "hal: {backend: simulated}\nstate_dir: /var/lib/chargepoint\n"
        "api: {host: 127.0.0.1, port: 0}\n"
    )
    config.chmod(0o644)
    drop_in = root.root / f"etc/systemd/system/{UNIT}.service.d/systemd-check.conf"
    drop_in.parent.mkdir(parents=True, exist_ok=True)
    drop_in.write_text(DROP_IN)


async def check(root: BootedRoot, csms: BenchCsms) -> None:
    log = csms.station(CP_ID)
    url = f"{csms.url}/{CP_ID}"
    online = f"online: connected to {url}, boot accepted"

    installed = await asyncio.to_thread(
        root.run, "sh", "/root/src/scripts/install.sh", "--wheels", "/root/wheels", timeout=900
    )
    say(installed.stdout.strip().replace("\n", "\n    "))
    # install.sh's `systemctl restart` returned: with Type=notify, after READY=1.
    if root.run("systemctl", "is-active", UNIT, check=False).stdout.strip() != "active":
        raise CheckFailed(root.run("systemctl", "status", UNIT, "--no-pager", check=False).stdout)
    ok("installed on a root without a gpio group; active once the start returned (READY=1)")
    await wait_for("the status line", lambda: root.show("StatusText") == online)
    ok(f"StatusText={online}")

    groups = {
        name: root.run("getent", "group", name).stdout.strip() for name in ("gpio", "dialout")
    }
    if not all(line.endswith(":chargepoint") or ",chargepoint" in line for line in groups.values()):
        raise CheckFailed(f"chargepoint is not in gpio and dialout: {groups}")
    pid = root.show("MainPID")
    status = root.run("cat", f"/proc/{pid}/status").stdout
    held = next(line.split()[1:] for line in status.splitlines() if line.startswith("Groups:"))
    gids = {line.split(":")[2] for line in groups.values()}
    if not gids <= set(held):
        raise CheckFailed(f"the daemon's groups {held} lack gpio/dialout {gids}")
    ok(f"the daemon runs with the gpio and dialout groups ({', '.join(groups.values())})")

    restarts = root.show("NRestarts")
    await log.call("Reset", {"type": "Soft"})
    await wait_for("the boot after Reset Soft", lambda: len(log.calls("BootNotification")) >= 2)
    await wait_for("online after the reset", lambda: root.show("StatusText") == online)
    if (root.show("MainPID"), root.show("NRestarts")) != (pid, restarts):
        raise CheckFailed("Reset Soft changed the main PID or counted a restart")
    ok(f"Reset Soft re-executed in place (main PID {pid}, NRestarts {restarts})")

    root.run("sh", "-c", f"kill -STOP {pid}")
    hung = time.monotonic()
    await wait_for(
        "the watchdog restart",
        lambda: (
            root.show("NRestarts") == str(int(restarts) + 1)
            and root.show("MainPID") not in ("0", pid)
        ),
    )
    await wait_for("online after the restart", lambda: root.show("StatusText") == online)
    ok(
        f"hung process (SIGSTOP) restarted by the watchdog after {time.monotonic() - hung:.1f} s "
        f"(main PID {root.show('MainPID')}, NRestarts {root.show('NRestarts')})"
    )

    await check_firmware_update(root, csms)

    stopped = await asyncio.to_thread(root.run, "systemctl", "stop", UNIT, check=False)
    result = {p: root.show(p) for p in ("Result", "ExecMainStatus", "ActiveState", "StatusText")}
    if stopped.returncode != 0 or result["Result"] != "success" or result["ExecMainStatus"] != "0":
        raise CheckFailed(f"systemctl stop exited {stopped.returncode}: {result}")
    ok(f"systemctl stop exited 0; the daemon exited 0 ({result['StatusText']})")


def ota_wheel(root: BootedRoot, out: Path) -> Path:
    """A wheel of the checkout that says it is OTA_VERSION."""
    src = copy_source(out / "src")
    for name, line in (
        ("pyproject.toml", "version = "),
        ("firmware/__init__.py", "__version__ = "),
    ):
        path = src / name
        lines = [
            f'{line}"{OTA_VERSION}"' if text.startswith(line) else text
            for text in path.read_text().splitlines()
        ]
        path.write_text("\n".join(lines) + "\n")
    return build_wheel(src, out / "wheel")


async def _update(root: BootedRoot, log: StationLog) -> None:
    with tempfile.TemporaryDirectory() as work:
        wheel = await asyncio.to_thread(ota_wheel, root, Path(work))
        async with http_server(Path(work) / "www") as http:
            shutil.copy(wheel, http.root / wheel.name)
            location = f"{http.base}/files/{wheel.name}"
            now = iso(datetime.now(UTC))
            await log.call("UpdateFirmware", {"location": location, "retrieveDate": now})
            await wait_for(
                "FirmwareStatusNotification Installed",
                lambda: any(
                    p["status"] == "Installed" for p in log.calls("FirmwareStatusNotification")
                ),
                timeout=600,
            )


async def check_firmware_update(root: BootedRoot, csms: BenchCsms) -> None:
    log = csms.station(CP_ID)
    online = f"online: connected to {csms.url}/{CP_ID}, boot accepted"
    pid, restarts = root.show("MainPID"), root.show("NRestarts")
    opt = root.root / "opt/chargepoint"
    before = sorted(str(p) for p in opt.rglob("*"))
    # /opt read-only for everyone in the root, as ProtectSystem=strict has it for the
    # service (which the drop-in may have had to turn off here).
    root.run("mount", "--bind", "/opt", "/opt")
    try:
        root.run("mount", "-o", "remount,bind,ro", "/opt")
        probe = root.run("touch", "/opt/chargepoint/probe", check=False)
        if probe.returncode == 0 or "Read-only" not in probe.stderr:
            raise CheckFailed(f"/opt is not read-only: {probe.stderr}")
        await _update(root, log)
    finally:
        root.run("umount", "/opt", check=False)
    statuses = [p["status"] for p in log.calls("FirmwareStatusNotification")]
    if statuses != ["Downloading", "Downloaded", "Installing", "Installed"]:
        raise CheckFailed(f"firmware statuses {statuses}")
    version = log.calls("BootNotification")[-1].get("firmwareVersion")
    if version != OTA_VERSION:
        raise CheckFailed(f"the station booted {version}, not {OTA_VERSION}")
    if (root.show("MainPID"), root.show("NRestarts")) != (pid, restarts):
        raise CheckFailed("the firmware update changed the main PID or counted a restart")
    current = root.run("readlink", "/var/lib/chargepoint/releases/current").stdout.strip()
    if not current.startswith(f"{OTA_VERSION}-"):
        raise CheckFailed(f"releases/current is {current!r}")
    if sorted(str(p) for p in opt.rglob("*")) != before:
        raise CheckFailed("the firmware update wrote into /opt/chargepoint")
    await wait_for("online after the update", lambda: root.show("StatusText") == online)
    ok(
        f"UpdateFirmware: release {current} built by the service, running as {version} "
        f"(main PID {pid}, NRestarts {restarts}), /opt read-only and untouched"
    )


async def main() -> int:
    if os.geteuid() != 0:
        say("needs root (debootstrap, namespaces, chroot)")
        return 2
    try:
        bootstrap(CHECK_ROOT)
    except (CheckFailed, subprocess.CalledProcessError) as err:
        say(f"FAILED: {err}")
        return 1
    root = BootedRoot(CHECK_ROOT)
    try:
        async with BenchCsms("127.0.0.1", 0, heartbeat_interval=300) as csms:
            await asyncio.to_thread(root.boot)
            say(f"systemd booted in {CHECK_ROOT} (PID {root.pid} here)")
            await asyncio.to_thread(prepare, root, csms.url)
            await check(root, csms)
    except (CheckFailed, subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        say(f"FAILED: {err}")
        if root.pid:
            journal = root.run("journalctl", "-u", UNIT, "-n", "40", "--no-pager", check=False)
            say("the unit's journal:\n" + journal.stdout)
        return 1
    finally:
        await asyncio.to_thread(root.poweroff)
    say("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
