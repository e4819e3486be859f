"""Stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test creates each sanity venv without pip and bootstraps pip with a script it
fetches from the internet, then runs pip with a scrubbed environment. This machine
reaches only package registries, so tools/sanity.sh installs this script in the
download's place. It installs the interpreter's bundled pip with ``ensurepip``, gives the
venv the controller's pip settings and TLS trust variables (saved by tools/sanity.sh
beside this script: ansible-test scrubs the environment, and pip then cannot verify the
index), and installs what ansible-test asked for.
"""
from __future__ import annotations

import ensurepip
import json
import os
import shutil
import subprocess
import sys


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    settings = os.path.join(here, "pip-settings.ini")
    if os.path.exists(settings):
        shutil.copyfile(settings, os.path.join(sys.prefix, "pip.conf"))
    trust_file = os.path.join(here, "tls-trust.json")
    if os.path.exists(trust_file):
        with open(trust_file, encoding="utf-8") as handle:
            trust = json.load(handle)
        os.environ.update(trust)
        # A .pth line runs at every interpreter start of this venv, so the pip runs
        # ansible-test makes later (with its scrubbed environment) keep the trust settings.
        site_packages = next(p for p in sys.path if p.startswith(sys.prefix) and p.endswith("site-packages"))
        with open(os.path.join(site_packages, "zz_tls_trust.pth"), "w", encoding="utf-8") as handle:
            handle.write("import os; os.environ.update(%r)\n" % (trust,))
    ensurepip.bootstrap(upgrade=True)
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    return subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *args])


if __name__ == "__main__":
    sys.exit(main())
