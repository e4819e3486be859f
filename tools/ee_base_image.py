# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Builds the execution environment's base image locally, the way the lab builds its nodes.

debootstrap (from the Debian mirror the machine's apt sources name, read at run time) gives a
minimal root file system with Python and pip; pip then installs ansible-core and ansible-runner
into it, constrained to the versions of requirements/test.txt; ``podman import`` makes the image.
The image is tagged with a hash of its recipe, so an unchanged recipe reuses the cached image.

pip reaches PyPI the way this machine does: ``pipconf`` turns the machine's effective pip
configuration (``pip config list``: files and PIP_* variables) into a directory holding a
pip.conf and the CA bundle it names. The base build uses it in the chroot and tools/ee-build.sh
mounts it into every step of the image build; nothing of it is baked into an image.

    python tools/ee_base_image.py tag              # the base image tag for the current recipe
    python tools/ee_base_image.py build            # build it unless cached; prints the tag
    python tools/ee_base_image.py pipconf DIR MNT  # write DIR/pip.conf (+ its CA bundle), used at MNT
"""
from __future__ import annotations

import configparser
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

from lablib.image import _unmount_below, apt_mirror, host_codename, image_exists, import_rootfs  # noqa: E402
from lablib.util import LabError, log, run  # noqa: E402

REPOSITORY = "localhost/kubecerts-ee-base"
RECIPE_VERSION = 1
# python3-venv: ansible-builder's assemble step makes a throwaway venv.
PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates")
# Installed with pip, at the versions requirements/test.txt pins (the suite's tested versions).
PIP_PACKAGES = ("ansible-core", "ansible-runner")
SHIM = os.path.join(ROOT, "ee", "ee-apt")
CONSTRAINTS = os.path.join(ROOT, "requirements", "test.txt")
# pip settings that carry over into a container; host paths (find-links) do not.
PIP_KEYS = {"index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout",
            "retries", "proxy", "cert", "client-cert", "disable-pip-version-check"}
PIP_FILE_KEYS = {"cert": "ca-bundle.crt", "client-cert": "client-cert.pem"}


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def pinned(package: str) -> str:
    """``package==version`` from requirements/test.txt; a missing pin is an error."""
    for line in _read(CONSTRAINTS).splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package and version.strip():
            return f"{package}=={version.strip()}"
    raise LabError(f"{CONSTRAINTS}: no '{package}==' pin; the base image installs pinned versions")


def recipe(suite: str) -> dict[str, object]:
    return {"version": RECIPE_VERSION, "suite": suite, "machine": platform.machine(),
            "packages": list(PACKAGES), "pip": [pinned(p) for p in PIP_PACKAGES],
            "constraints": hashlib.sha256(_read(CONSTRAINTS).encode()).hexdigest(),
            "shim": hashlib.sha256(_read(SHIM).encode()).hexdigest()}


def image_tag(suite: str | None = None) -> str:
    digest = hashlib.sha256(json.dumps(recipe(suite or host_codename()), sort_keys=True)
                            .encode()).hexdigest()[:16]
    return f"{REPOSITORY}:{digest}"


def pip_settings() -> dict[str, dict[str, str]]:
    """The machine's effective pip configuration, by section, as ``pip config list`` shows it."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"pip config list failed: {proc.stderr.strip()[-300:]}")
    sections: dict[str, dict[str, str]] = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^([^=]+?)\.([A-Za-z0-9_-]+)=(.*)$", line.strip())
        if not match:
            continue
        section, key, raw = match.groups()
        # pip prints the values Python-quoted; settings from PIP_* variables come as ":env:".
        value = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" else raw
        section = "global" if section == ":env:" else section
        if key in PIP_KEYS:
            # Variables win over files, and "global" holds what any command reads.
            sections.setdefault(section, {})[key] = value
    return sections


def write_pipconf(directory: str, mounted_at: str) -> str:
    """Writes ``directory/pip.conf`` (and the files it names) for use at ``mounted_at``."""
    os.makedirs(directory, exist_ok=True)
    config = configparser.ConfigParser(interpolation=None)
    for section, values in sorted(pip_settings().items()):
        config[section] = {}
        for key, value in sorted(values.items()):
            if key in PIP_FILE_KEYS:
                if not os.path.isfile(value):
                    raise LabError(f"pip config names {key} = {value}, which is not a file")
                shutil.copyfile(value, os.path.join(directory, PIP_FILE_KEYS[key]))
                value = f"{mounted_at}/{PIP_FILE_KEYS[key]}"
            config[section][key] = value
    path = os.path.join(directory, "pip.conf")
    with open(path, "w", encoding="utf-8") as handle:
        config.write(handle)
    return path


def _debootstrap(suite: str, rootfs: str) -> None:
    proc = run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
                rootfs, apt_mirror(suite)], timeout=1200, check=False)
    if proc.returncode != 0:
        raise LabError(f"debootstrap failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-800:]}")


def _pip_install(rootfs: str) -> None:
    """pip in the chroot, with the machine's pip configuration and name resolution."""
    conf_in_chroot = "/tmp/kubecerts-pip"
    write_pipconf(rootfs + conf_in_chroot, conf_in_chroot)
    shutil.copyfile(CONSTRAINTS, os.path.join(rootfs, "tmp", "constraints.txt"))
    resolv = os.path.join(rootfs, "etc", "resolv.conf")
    if os.path.lexists(resolv):
        os.unlink(resolv)
    shutil.copyfile("/etc/resolv.conf", resolv)
    run(["mount", "-t", "proc", "proc", os.path.join(rootfs, "proc")])
    try:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "LANG": "C.UTF-8", "PIP_CONFIG_FILE": f"{conf_in_chroot}/pip.conf",
               "PIP_BREAK_SYSTEM_PACKAGES": "1", "PIP_NO_CACHE_DIR": "1"}
        proc = subprocess.run(["chroot", rootfs, "python3", "-m", "pip", "install", "-q",
                               "--no-warn-script-location", "-c", "/tmp/constraints.txt",
                               *(pinned(p) for p in PIP_PACKAGES)],
                              env=env, capture_output=True, timeout=1200, check=False)
        if proc.returncode != 0:
            raise LabError(f"pip install in the base image failed: {proc.stderr.decode(errors='replace')[-800:]}")
    finally:
        run(["umount", os.path.join(rootfs, "proc")], check=False)
    # Nothing of the build machine stays in the image: podman writes resolv.conf at run time.
    shutil.rmtree(rootfs + conf_in_chroot)
    os.unlink(os.path.join(rootfs, "tmp", "constraints.txt"))
    os.unlink(resolv)
    shutil.copyfile(SHIM, os.path.join(rootfs, "usr", "local", "bin", "ee-apt"))
    os.chmod(os.path.join(rootfs, "usr", "local", "bin", "ee-apt"), 0o755)
    for rel in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in os.listdir(os.path.join(rootfs, rel)):
            path = os.path.join(rootfs, rel, entry)
            if os.path.isfile(path):
                os.unlink(path)


def build() -> str:
    suite = host_codename()
    tag = image_tag(suite)
    if image_exists(tag):
        return tag
    if os.geteuid() != 0:
        raise LabError("building the execution environment's base image needs root (debootstrap)")
    workdir = tempfile.mkdtemp(prefix="kubecerts-ee-rootfs-", dir="/var/tmp")
    rootfs = os.path.join(workdir, "rootfs")
    started = time.monotonic()
    try:
        log(f"building {tag} (debootstrap {suite}, then pip: {', '.join(pinned(p) for p in PIP_PACKAGES)})")
        _debootstrap(suite, rootfs)
        log(f"debootstrap done in {time.monotonic() - started:.0f} s")
        _pip_install(rootfs)
        import_rootfs(rootfs, tag, ("CMD=/bin/bash", "ENV LANG=C.UTF-8"))
        log(f"base image built in {time.monotonic() - started:.0f} s")
    finally:
        _unmount_below(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    return tag


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["tag"]:
            print(image_tag())
        elif argv[:1] == ["build"]:
            print(build())
        elif argv[:1] == ["pipconf"] and len(argv) == 3:
            write_pipconf(argv[1], argv[2])
        else:
            print("usage: ee_base_image.py tag | build | pipconf DIR MOUNTPOINT", file=sys.stderr)
            return 2
    except LabError as exc:
        print(f"ee_base_image: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
