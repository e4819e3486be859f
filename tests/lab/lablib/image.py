# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Builds and caches the node images with debootstrap and ``podman import``.

Two variants come out of one debootstrap run: ``full`` and ``nocrypto`` (the same root file
system with python3-cryptography purged). Each is tagged with a hash of its build recipe, so a
recipe change builds new images and an unchanged recipe reuses the cached ones. The mirror is
read from the machine's apt sources at run time and is not part of the hash.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

from .util import LabError, log, podman, run

REPOSITORY = "localhost/kubecerts-lab-node"
VARIANTS = ("full", "nocrypto")
PACKAGES = ("systemd", "systemd-sysv", "python3", "python3-yaml", "openssh-server", "iproute2",
            "openssl", "procps", "ca-certificates", "python3-cryptography",
            # debootstrap does not resolve virtual packages: name cryptography's cffi backend.
            "python3-cffi-backend")
# Files baked into every image. Anything lab- or node-specific is written at lab-up instead.
IMAGE_FILES = {
    "etc/ssh/sshd_config.d/lab.conf": (
        "# kubecerts lab: root logs in with the lab key only\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    ),
    # Keep journald small: one node must stay under 80 MiB.
    "etc/systemd/journald.conf.d/lab.conf": (
        "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\nForwardToConsole=no\n"
    ),
    "etc/systemd/system.conf.d/lab.conf": "[Manager]\nDefaultTimeoutStopSec=5s\n",
}
# Units that only cost memory and start-up time in a container.
MASKED_UNITS = ("getty@.service", "console-getty.service", "systemd-logind.service",
                "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                "fstrim.timer", "dpkg-db-backup.timer", "systemd-tmpfiles-clean.timer",
                "systemd-remount-fs.service", "sys-kernel-config.mount", "sys-kernel-debug.mount",
                "sys-kernel-tracing.mount", "systemd-udevd.service", "systemd-journald-audit.socket")
RECIPE_VERSION = 3
LOCK_PATH = "/var/tmp/kubecerts-lab-image.lock"


def host_codename() -> str:
    with open("/etc/os-release", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise LabError("/etc/os-release has no VERSION_CODENAME; cannot pick a debootstrap suite")


def recipe(variant: str, suite: str) -> dict[str, t.Any]:
    packages = [p for p in PACKAGES if variant == "full" or p != "python3-cryptography"]
    result = {"version": RECIPE_VERSION, "suite": suite, "variant": variant, "packages": packages,
              "files": IMAGE_FILES, "masked": list(MASKED_UNITS), "machine": platform.machine()}
    if os.environ.get("KUBECERTS_LAB_IMAGE_SALT"):
        # Lets the benchmark time a fresh build without touching images other labs use.
        result["salt"] = os.environ["KUBECERTS_LAB_IMAGE_SALT"]
    return result


def image_tag(variant: str, suite: str | None = None) -> str:
    digest = hashlib.sha256(json.dumps(recipe(variant, suite or host_codename()),
                                       sort_keys=True).encode()).hexdigest()[:16]
    return f"{REPOSITORY}:{digest}" if variant == "full" else f"{REPOSITORY}:{variant}-{digest}"


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def apt_mirror(suite: str) -> str:
    """The first Debian/Ubuntu archive URI the machine's apt sources use for ``suite``."""
    entries: list[tuple[str, list[str]]] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path, encoding="utf-8") as handle:
            for stanza in re.split(r"\n\s*\n", handle.read()):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.lstrip().startswith("#"):
                        key, value = line.split(":", 1)
                        fields[key.strip().lower()] = value.strip()
                if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                    for uri in fields.get("uris", "").split():
                        entries.append((uri, fields.get("suites", "").split()))
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                    if match:
                        entries.append((match.group(1), [match.group(2)]))
    for uri, suites in entries:
        if suite in suites and uri.startswith(("http://", "https://", "file:/")):
            return uri
    raise LabError(f"no apt source for suite {suite!r} in /etc/apt/sources.list(.d); "
                   "debootstrap needs the machine's configured mirror")


@contextlib.contextmanager
def _build_lock() -> t.Iterator[None]:
    """Two labs starting at once must not both build the same image."""
    with open(LOCK_PATH, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _customise(rootfs: str) -> None:
    for rel, text in IMAGE_FILES.items():
        path = os.path.join(rootfs, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    for unit in MASKED_UNITS:
        link = os.path.join(rootfs, "etc/systemd/system", unit)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink("/dev/null", link)
    for rel in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in glob.glob(os.path.join(rootfs, rel, "*")):
            if os.path.isfile(entry):
                os.unlink(entry)
    # sshd refuses to start without its privilege-separation directory.
    os.makedirs(os.path.join(rootfs, "run/sshd"), exist_ok=True)


def _debootstrap_log(rootfs: str) -> str:
    try:
        with open(os.path.join(rootfs, "debootstrap", "debootstrap.log"), encoding="utf-8",
                  errors="replace") as handle:
            return handle.read()[-1500:]
    except OSError as exc:
        return f"(no debootstrap.log: {exc})"


# A systemd node: PID 1 is init, and podman stops it the way systemd wants.
NODE_IMAGE_CHANGES = ("CMD=/sbin/init", "STOPSIGNAL=SIGRTMIN+3")


def import_rootfs(rootfs: str, tag: str, changes: t.Sequence[str] = NODE_IMAGE_CHANGES) -> None:
    """``podman import`` of a root file system tree as image ``tag``, with Dockerfile ``changes``."""
    tar = subprocess.Popen(["tar", "-C", rootfs, "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(["podman", "import", *(arg for change in changes for arg in ("--change", change)),
                               "-", tag],
                              stdin=tar.stdout, capture_output=True, timeout=600)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise LabError(f"podman import {tag} failed: {proc.stderr.decode(errors='replace')[-500:]}")


def ensure_images(variants: t.Iterable[str] = VARIANTS) -> dict[str, str]:
    """Returns ``{variant: tag}``, building whatever is missing from the cache."""
    suite = host_codename()
    tags = {v: image_tag(v, suite) for v in variants}
    if all(image_exists(tag) for tag in tags.values()):
        return tags
    with _build_lock():
        missing = [v for v, tag in tags.items() if not image_exists(tag)]
        if missing:
            _build(suite, {v: tags[v] for v in VARIANTS if v in missing or v == "full"}, missing)
    return tags


def _build(suite: str, tags: dict[str, str], missing: list[str]) -> None:
    if os.geteuid() != 0:
        raise LabError("building the lab image needs root (debootstrap)")
    mirror = apt_mirror(suite)
    workdir = tempfile.mkdtemp(prefix="kubecerts-lab-rootfs-", dir="/var/tmp")
    rootfs = os.path.join(workdir, "rootfs")
    try:
        log(f"building node image {', '.join(tags[v] for v in missing)} (debootstrap {suite})")
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as pool:
            _debootstrap(suite, rootfs, mirror)
            log(f"debootstrap done in {time.monotonic() - started:.0f} s")
            _customise(rootfs)
            # Both imports read the root file system at once; nocrypto's changes go to an overlay.
            full = pool.submit(import_rootfs, rootfs, tags["full"]) if "full" in missing else None
            if "nocrypto" in missing:
                with _overlay(rootfs, workdir) as merged:
                    run(["chroot", merged, "dpkg", "--purge", "python3-cryptography"])
                    import_rootfs(merged, image_tag("nocrypto", suite))
            if full is not None:
                full.result()
        log(f"images built in {time.monotonic() - started:.0f} s")
    finally:
        _unmount_below(workdir)
        # Deleting a few hundred MB of small files can take many seconds on a busy disk: the
        # lab goes on starting meanwhile (the interpreter waits for this thread at exit).
        threading.Thread(target=shutil.rmtree, args=(workdir,), kwargs={"ignore_errors": True}).start()


def _unmount_below(directory: str) -> None:
    """Anything a failed debootstrap left mounted (proc, sys) must go before the tree is deleted."""
    with open("/proc/mounts", encoding="utf-8") as handle:
        points = [line.split()[1] for line in handle]
    for point in sorted((p for p in points if p.startswith(directory + "/")), key=len, reverse=True):
        run(["umount", "-l", point], check=False)


def _debootstrap(suite: str, rootfs: str, mirror: str) -> None:
    """debootstrap in two stages, with dpkg's fsyncs off in between: the tree is thrown away
    after the import, and on a busy disk the fsyncs cost more than the whole download."""
    proc = run(["debootstrap", "--foreign", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
                rootfs, mirror], timeout=1200, check=False)
    if proc.returncode == 0:
        unsafe = os.path.join(rootfs, "etc/dpkg/dpkg.cfg.d/kubecerts-lab-unsafe-io")
        os.makedirs(os.path.dirname(unsafe), exist_ok=True)
        with open(unsafe, "w", encoding="utf-8") as handle:
            handle.write("force-unsafe-io\n")
        proc = run(["chroot", rootfs, "/debootstrap/debootstrap", "--second-stage"], timeout=1200, check=False)
        if os.path.exists(unsafe):
            os.unlink(unsafe)
    if proc.returncode != 0:
        raise LabError(f"debootstrap failed ({proc.returncode}): {_debootstrap_log(rootfs)}")


@contextlib.contextmanager
def _overlay(lower: str, workdir: str) -> t.Iterator[str]:
    upper, work, merged = (os.path.join(workdir, d) for d in ("upper", "work", "merged"))
    for path in (upper, work, merged):
        os.makedirs(path)
    run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", merged])
    try:
        yield merged
    finally:
        run(["umount", merged], check=False)
