# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tiny stdlib client for the lab's kube-apiserver, used by labctl to wait for Ready nodes."""
from __future__ import annotations

import http.client
import json
import ssl
import typing as t
from urllib.parse import urlsplit


class Api:
    def __init__(self, server: str, ca_files: t.Sequence[str], cert_file: str, key_file: str,
                 timeout: float = 5.0):
        parts = urlsplit(server)
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_files[0])
        for extra in ca_files[1:]:
            self.context.load_verify_locations(extra)
        self.context.load_cert_chain(cert_file, key_file)

    def get(self, path: str) -> t.Any:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise OSError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
        return json.loads(body)

    def node_states(self) -> dict[str, str]:
        """``{node: "Ready" | "NotReady" | "Unknown"}`` for every registered node."""
        states = {}
        for item in self.get("/api/v1/nodes").get("items", []):
            conditions = {c.get("type"): c.get("status") for c in item.get("status", {}).get("conditions", [])}
            ready = conditions.get("Ready")
            states[item["metadata"]["name"]] = {"True": "Ready", "False": "NotReady"}.get(ready or "", "Unknown")
        return states

    def try_node_states(self) -> dict[str, str] | None:
        try:
            return self.node_states()
        except (OSError, ValueError, ssl.SSLError):
            return None
