"""Environment for ansible runs whose whole output the tests parse as one JSON document."""
from __future__ import annotations

import os

CALLBACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")


def json_callback_env() -> dict[str, str]:
    return {"ANSIBLE_CALLBACK_PLUGINS": CALLBACK_DIR, "ANSIBLE_STDOUT_CALLBACK": "kubecerts_test_json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
