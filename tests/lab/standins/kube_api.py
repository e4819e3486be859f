# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API stand-in for the lab (also plays kube-controller-manager's CSR parts).

It serves the slice of the API that kubelet certificates touch: discovery, core/v1 nodes
and certificates.k8s.io/v1 certificatesigningrequests, with client-certificate
authentication, the Node authorizer and NodeRestriction admission rules, the kubelet CSR
auto-approver and signer, and the node lifecycle controller's Ready=Unknown marking.
Bodies and error texts follow the real API server; docs/lab-standins.md lists what is
faithful and what is not. Runs on python3 + cryptography (+ PyYAML, unused).
"""
from __future__ import annotations

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import typing as t
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from kube_api_codec import PROTOBUF, apply_patch, decode_protobuf_csr, parse_duration, render_table, rfc3339, table_version
from kube_api_rules import (ANONYMOUS, CERT_GROUP, CLIENT_KUBELET_SIGNER, CLIENT_SIGNER, CSRS,
                            NAME_CHARS, NO_CHECK_TIME, NO_RESOURCE, NODES, RESOURCES, SERVER_VERSION, SERVING_SIGNER,
                            UNAUTHORIZED, ApiError, Attrs, Resource, User, already_exists, api_resource_list, authorize,
                            bad_request, conflict, csr_condition, forbidden, group_entry, invalid, node_condition,
                            not_found, _details)
from kube_api_signer import EXT_USAGES, KEY_USAGES, Signer, parse_csr, validate_for_signer


# --------------------------------------------------------------------------- store

class Store:
    """Objects, resourceVersions and heartbeats, persisted as one JSON file."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, "state.json")
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 0
        self.objects: dict[str, dict[str, dict[str, t.Any]]] = {"nodes": {}, "certificatesigningrequests": {}}
        self.heartbeats: dict[str, dict[str, t.Any]] = {}
        self.dirty = False
        os.makedirs(state_dir, exist_ok=True)
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                saved = json.load(handle)
            self.rv = int(saved.get("resourceVersion", 0))
            self.objects.update(saved.get("objects", {}))
            self.heartbeats = saved.get("heartbeats", {})
        # Like a restarted node lifecycle controller: every node gets a fresh grace period.
        started = time.time()
        for name in self.objects["nodes"]:
            self.heartbeats.setdefault(name, {})["observed"] = started

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def save(self) -> None:
        """Marks the state changed; the controller thread writes it within moments (flush), so a
        burst of heartbeats costs one write. Shutdown flushes too."""
        with self.lock:
            self.dirty = True
            self.changed.notify_all()

    def flush(self) -> None:
        with self.lock:
            if not self.dirty:
                return
            data = json.dumps({"resourceVersion": self.rv, "objects": self.objects, "heartbeats": self.heartbeats},
                              separators=(",", ":"))
            tmp = f"{self.path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
            self.dirty = False

    def put(self, plural: str, obj: dict[str, t.Any]) -> dict[str, t.Any]:
        with self.lock:
            obj["metadata"]["resourceVersion"] = self.next_rv()
            self.objects[plural][obj["metadata"]["name"]] = obj
            self.save()
            return copy.deepcopy(obj)


# --------------------------------------------------------------------------- the API

def strip_type(obj: dict[str, t.Any]) -> dict[str, t.Any]:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (s.strip() for s in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_selector_matches(selector: str, obj: dict[str, t.Any]) -> bool:
    for term in filter(None, (s.strip() for s in selector.split(","))):
        negate = "!=" in term
        key, value = re.split(r"!=|==|=", term, maxsplit=1)
        if key.strip() != "metadata.name":
            raise bad_request(f'"{key.strip()}" is not a known field selector: only "metadata.name"')
        if (obj["metadata"]["name"] == value.strip()) == negate:
            return False
    return True


class KubeApi:
    """Request semantics, independent of HTTP plumbing."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.store = Store(args.state_dir)
        self.signer = Signer(args.ca_cert, args.ca_key, args.cluster_signing_duration)
        self.grace = args.node_monitor_grace_period
        self.tokens = self._load_tokens(args.token_auth_file) if args.token_auth_file else {}

    @staticmethod
    def _load_tokens(path: str) -> dict[str, User]:
        import csv  # pylint: disable=import-outside-toplevel
        tokens = {}
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                if len(row) >= 3 and not row[0].startswith("#"):
                    groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
                    tokens[row[0].strip()] = User(row[1].strip(), groups + ("system:authenticated",))
        return tokens

    # ---- authentication
    def authenticate(self, peer: dict[str, t.Any] | None, peer_der: bytes | None, authorization: str) -> User:
        if peer:
            expires = ssl.cert_time_to_seconds(peer["notAfter"])
            starts = ssl.cert_time_to_seconds(peer["notBefore"])
            if not starts <= time.time() <= expires:
                raise UNAUTHORIZED  # x509: certificate has expired or is not yet valid
            cn, orgs = "", []
            for rdn in peer.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
                    elif key == "organizationName":
                        orgs.append(value)
            fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(peer_der or b"").digest())
            return User(cn, tuple(orgs) + ("system:authenticated",), fingerprint)
        if authorization.startswith("Bearer "):
            user = self.tokens.get(authorization[7:].strip())
            if user is None:
                raise UNAUTHORIZED
            return user
        if self.args.anonymous_auth:
            return ANONYMOUS
        raise UNAUTHORIZED

    # ---- routing
    def handle(self, user: User, method: str, raw_path: str, headers: t.Mapping[str, str],
               body: bytes) -> tuple[int, t.Any]:
        split = urlsplit(raw_path)
        path = unquote(split.path).rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        parts = path.strip("/").split("/") if path != "/" else []
        verb = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                           {})
        resolved = self._resolve(parts)
        if resolved is None:
            authorize(user, Attrs(verb, path))
            return self._non_resource(user, method, path)
        group, version, res, name, sub = resolved
        if method == "GET" and not name:
            verb = "watch" if query.get("watch") in ("1", "true") else "list"
        elif method == "DELETE" and not name:
            verb = "deletecollection"
        attrs = Attrs(verb, path, res.plural, res.group, sub, name)
        authorize(user, attrs)
        if verb == "watch":
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by the lab API stand-in", {})
        if verb == "list":
            return 200, self.list(res, query, headers)
        if verb == "get":
            return 200, self.get(res, name, sub, headers)
        if verb == "create":
            if sub:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                               "resource", {})
            return 201, self.create(user, res, self._json(body), query)
        if verb in ("update", "patch"):
            return 200, self.update(user, res, name, sub, method, headers, body, query)
        if verb == "delete":
            return 200, self.delete(res, name, query)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                       {})

    @staticmethod
    def _resolve(parts: list[str]) -> tuple[str, str, Resource, str, str] | None:
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if rest[0] == "namespaces" or len(rest) > 3:
            raise NO_RESOURCE
        res = RESOURCES.get((group, version, rest[0]))
        if res is None:
            raise NO_RESOURCE
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in res.subresources:
            raise NO_RESOURCE
        return group, version, res, name, sub

    def _non_resource(self, user: User, method: str, path: str) -> tuple[int, t.Any]:
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                           {})
        host = self.args.listen
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}
        if path == "/api/v1":
            return 200, api_resource_list("v1", NODES)
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_entry()]}
        if path == f"/apis/{CERT_GROUP}":
            return 200, dict(kind="APIGroup", apiVersion="v1", **group_entry())
        if path == f"/apis/{CERT_GROUP}/v1":
            return 200, api_resource_list(f"{CERT_GROUP}/v1", CSRS)
        if path == "/version":
            return 200, SERVER_VERSION
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok"
        if path == "/lab/heartbeats":
            if not user.is_admin:
                raise forbidden("", "", "", f'User "{user.name}" cannot get path "{path}"')
            return 200, self.heartbeat_report()
        return 404, "404 page not found\n"

    @staticmethod
    def _json(body: bytes) -> dict[str, t.Any]:
        try:
            obj = json.loads(body or b"null")
        except ValueError as exc:
            raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
        if not isinstance(obj, dict):
            raise bad_request("Object 'Kind' is missing in the request body")
        return obj

    # ---- reads
    def _obj(self, res: Resource, name: str) -> dict[str, t.Any]:
        obj = self.store.objects[res.plural].get(name)
        if obj is None:
            raise not_found(res.plural, res.group, name)
        return copy.deepcopy(obj)

    def get(self, res: Resource, name: str, sub: str, headers: t.Mapping[str, str]) -> dict[str, t.Any]:
        with self.store.lock:
            obj = self._obj(res, name)
        table = table_version(headers)
        return render_table(res, [obj], table, str(self.store.rv)) if table else obj

    def list(self, res: Resource, query: dict[str, str], headers: t.Mapping[str, str]) -> dict[str, t.Any]:
        with self.store.lock:
            items = [copy.deepcopy(o) for _name, o in sorted(self.store.objects[res.plural].items())]
            rv = str(self.store.rv)
        if query.get("labelSelector"):
            selector = query["labelSelector"]
            items = [o for o in items if label_selector_matches(selector, o["metadata"].get("labels") or {})]
        if query.get("fieldSelector"):
            items = [o for o in items if field_selector_matches(query["fieldSelector"], o)]
        table = table_version(headers)
        if table:
            return render_table(res, items, table, rv)
        api_version = f"{res.group}/v1" if res.group else "v1"
        return {"kind": f"{res.kind}List", "apiVersion": api_version, "metadata": {"resourceVersion": rv},
                "items": [strip_type(o) for o in items]}

    # ---- writes
    def create(self, user: User, res: Resource, obj: dict[str, t.Any], query: dict[str, str]) -> dict[str, t.Any]:
        if obj.get("kind") not in (None, res.kind):
            raise bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the expected "
                              f"API version ({res.group + '/' if res.group else ''}v1)")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        name = meta.get("name") or ""
        if not name and not meta.get("generateName"):
            raise invalid(res.kind, res.group, "", [("FieldValueRequired", "metadata.name",
                                                     "Required value: name or generateName is required")])
        self._admit(user, res, "create", name, obj)  # mutating admission sees the requested name only
        if res is CSRS:
            self._prepare_csr(user, obj)
        with self.store.lock:
            if not name:
                while not name or name in self.store.objects[res.plural]:
                    name = meta["generateName"] + "".join(secrets.choice(NAME_CHARS) for _index in range(5))
            self._validate_name(res, name)
            if name in self.store.objects[res.plural]:
                raise already_exists(res.plural, res.group, name)
            meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=rfc3339())
            meta.pop("resourceVersion", None)
            obj["kind"], obj["apiVersion"] = res.kind, (f"{res.group}/v1" if res.group else "v1")
            obj.setdefault("spec", {})
            obj.setdefault("status", {})
            if "dryRun" in query:
                return obj
            if res is NODES:
                self._note_heartbeat(user, None, obj)
            return self.store.put(res.plural, obj)

    def update(self, user: User, res: Resource, name: str, sub: str, method: str, headers: t.Mapping[str, str],
               body: bytes, query: dict[str, str]) -> dict[str, t.Any]:
        with self.store.lock:
            old = self._obj(res, name)
            if method == "PATCH":
                new = apply_patch(headers.get("Content-Type") or "", old, body)
            elif (headers.get("Content-Type") or "").startswith(PROTOBUF):
                if res is not CSRS:
                    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format "
                                   "- accepted media types include: application/json, application/yaml", {})
                new = decode_protobuf_csr(body)
            else:
                new = self._json(body)
            if method != "PATCH":
                if new.get("metadata", {}).get("name", name) != name:
                    raise bad_request(f"the name of the object ({new['metadata']['name']}) does not match the name "
                                      f"on the URL ({name})")
            new_meta = new.get("metadata") or {}
            wanted_rv = new_meta.get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise conflict(res.plural, res.group, name)
            merged = self._merge_for_subresource(res, sub, old, new)
            self._admit(user, res, "update", name, merged)
            if res is CSRS and sub:
                self._validate_csr_status(old, merged, sub)
            if "dryRun" in query:
                return merged
            if res is NODES:
                self._note_heartbeat(user, old, merged)
            return self.store.put(res.plural, merged)

    @staticmethod
    def _merge_for_subresource(res: Resource, sub: str, old: dict[str, t.Any], new: dict[str, t.Any]) -> dict[str, t.Any]:
        """What each endpoint may change: main keeps status, /status keeps spec and metadata,
        /approval changes only the conditions (the registry strategies' PrepareForUpdate)."""
        merged = copy.deepcopy(old)
        if not sub:
            meta = new.get("metadata") or {}
            for key in ("labels", "annotations", "finalizers", "ownerReferences"):
                if key in meta:
                    merged["metadata"][key] = meta[key]
                else:
                    merged["metadata"].pop(key, None)
            if res is NODES:
                merged["spec"] = new.get("spec") or {}
        elif sub == "status":
            status = copy.deepcopy(new.get("status") or {})
            if res is CSRS:
                status = {k: v for k, v in status.items() if k in ("conditions", "certificate")}
            merged["status"] = status
        elif sub == "approval":
            conditions = (new.get("status") or {}).get("conditions") or []
            merged.setdefault("status", {})["conditions"] = copy.deepcopy(conditions)
        for cond in (merged.get("status") or {}).get("conditions") or []:
            if res is CSRS and isinstance(cond, dict):
                cond.setdefault("lastTransitionTime", rfc3339())
        return merged

    def delete(self, res: Resource, name: str, query: dict[str, str]) -> dict[str, t.Any]:
        with self.store.lock:
            obj = self._obj(res, name)
            if "dryRun" not in query:
                del self.store.objects[res.plural][name]
                self.store.heartbeats.pop(name, None) if res is NODES else None
                self.store.next_rv()
                self.store.save()
        details = _details(res.plural, res.group, name)
        details["uid"] = obj["metadata"]["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    @staticmethod
    def _validate_name(res: Resource, name: str) -> None:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name) or len(name) > 253:
            raise invalid(res.kind, res.group, name, [(
                "FieldValueInvalid", "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
                "characters, '-' or '.', and must start and end with an alphanumeric character")])

    # ---- admission (NodeRestriction) and CSR registry strategy
    @staticmethod
    def _admit(user: User, res: Resource, operation: str, name: str, obj: dict[str, t.Any]) -> None:
        node = user.node_name
        if node is None:
            return
        if res is NODES and name != node:
            raise forbidden(res.plural, res.group, name, f'node "{node}" is not allowed to modify node "{name}"')
        if res is CSRS and operation == "create":
            spec = obj.get("spec") or {}
            if spec.get("signerName") not in (SERVING_SIGNER, CLIENT_KUBELET_SIGNER):
                return
            try:
                cn = parse_csr(base64.b64decode(spec.get("request") or "")).subject.get_attributes_for_oid(
                    NameOID.COMMON_NAME)
            except ValueError as exc:
                raise forbidden(res.plural, res.group, name, f"unable to parse csr: {exc}") from None
            if not cn or cn[0].value != f"system:node:{node}":
                raise forbidden(res.plural, res.group, name, f"can only create a node CSR with CN=system:node:{node}")

    def _prepare_csr(self, user: User, obj: dict[str, t.Any]) -> None:
        spec = obj.setdefault("spec", {})
        name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
        causes = []
        try:
            parse_csr(base64.b64decode(spec.get("request") or "", validate=True))
        except ValueError as exc:
            causes.append(("FieldValueInvalid", "spec.request", f"Invalid value: []byte{{...}}: {exc}"))
        if not spec.get("signerName"):
            causes.append(("FieldValueRequired", "spec.signerName", "Required value"))
        usages = spec.get("usages") or []
        if not usages:
            causes.append(("FieldValueRequired", "spec.usages", "Required value"))
        for index, usage in enumerate(usages):
            if usage not in KEY_USAGES and usage not in EXT_USAGES:
                causes.append(("FieldValueNotSupported", f"spec.usages[{index}]",
                               f'Unsupported value: "{usage}": supported values: '
                               + ", ".join(f'"{u}"' for u in sorted(list(KEY_USAGES) + list(EXT_USAGES)))))
        seconds = spec.get("expirationSeconds")
        if seconds is not None and (not isinstance(seconds, int) or seconds < 600):
            causes.append(("FieldValueInvalid", "spec.expirationSeconds",
                           f"Invalid value: {seconds}: may not specify a duration less than 600 seconds (10 minutes)"))
        if causes:
            raise invalid(CSRS.kind, CSRS.group, name, causes)
        spec.update(username=user.name, groups=list(user.groups), uid="")
        spec.pop("extra", None)
        obj["status"] = {}

    @staticmethod
    def _validate_csr_status(old: dict[str, t.Any], new: dict[str, t.Any], sub: str) -> None:
        name = old["metadata"]["name"]
        conditions = (new.get("status") or {}).get("conditions") or []
        causes = []
        seen: dict[str, int] = {}
        for index, cond in enumerate(conditions):
            kind, status = cond.get("type", ""), cond.get("status", "")
            field = f"status.conditions[{index}]"
            if not kind:
                causes.append(("FieldValueRequired", f"{field}.type", "Required value"))
            if kind in seen:
                causes.append(("FieldValueDuplicate", f"{field}.type", f'Duplicate value: "{kind}"'))
            seen[kind] = index
            if status not in ("True", "False", "Unknown"):
                causes.append(("FieldValueNotSupported", f"{field}.status",
                               f'Unsupported value: "{status}": supported values: "False", "True", "Unknown"'))
            elif kind in ("Approved", "Denied") and status != "True":
                causes.append(("FieldValueNotSupported", f"{field}.status",
                               f'Unsupported value: "{status}": supported values: "True"'))
        if "Approved" in seen and "Denied" in seen:
            causes.append(("FieldValueInvalid", f"status.conditions[{seen['Denied']}].type",
                           'Invalid value: "Denied": Approved and Denied conditions are mutually exclusive'))
        for kind in ("Approved", "Denied", "Failed"):
            if csr_condition(old, kind) and kind not in seen:
                causes.append(("FieldValueForbidden", "status.conditions",
                               f'Forbidden: updates may not remove a condition of type "{kind}"'))
        certificate = (new.get("status") or {}).get("certificate")
        if sub == "status" and certificate:
            try:
                x509.load_pem_x509_certificates(base64.b64decode(certificate))
            except ValueError as exc:
                causes.append(("FieldValueInvalid", "status.certificate", f"Invalid value: \"<certificate data>\": {exc}"))
        if causes:
            raise invalid(CSRS.kind, CSRS.group, name, causes)

    # ---- node heartbeats (what the node lifecycle controller watches)
    def _note_heartbeat(self, user: User, old: dict[str, t.Any] | None, new: dict[str, t.Any]) -> None:
        ready = node_condition(new, "Ready")
        before = node_condition(old, "Ready") if old else None
        if ready is None or (before and before.get("lastHeartbeatTime") == ready.get("lastHeartbeatTime")):
            return
        self.store.heartbeats[new["metadata"]["name"]] = {
            "observed": time.time(), "lastHeartbeatTime": ready.get("lastHeartbeatTime"), "user": user.name,
            "clientCertificateSHA256": user.cert_sha256}

    def heartbeat_report(self) -> dict[str, t.Any]:
        now = time.time()
        with self.store.lock:
            nodes = {}
            for name, node in sorted(self.store.objects["nodes"].items()):
                beat = self.store.heartbeats.get(name, {})
                ready = node_condition(node, "Ready") or {}
                nodes[name] = {"lastHeartbeatTime": beat.get("lastHeartbeatTime"),
                               "secondsSinceObserved": round(now - beat.get("observed", now), 3),
                               "user": beat.get("user"), "clientCertificateSHA256": beat.get("clientCertificateSHA256"),
                               "ready": ready.get("status", "Unknown"), "readyReason": ready.get("reason")}
        return {"kind": "LabHeartbeats", "apiVersion": "lab.kubecerts.io/v1",
                "nodeMonitorGracePeriodSeconds": self.grace, "nodes": nodes}

    # ---- controllers
    def controllers_once(self) -> None:
        with self.store.lock:
            dirty = self._lifecycle() | self._approve_and_sign()
            if dirty:
                self.store.save()

    def _lifecycle(self) -> bool:
        """Node lifecycle controller: Unknown after the grace period, and the matching taints."""
        dirty = False
        now = time.time()
        for name, node in self.store.objects["nodes"].items():
            beat = self.store.heartbeats.setdefault(name, {"observed": now})
            status = node.setdefault("status", {})
            conditions = status.setdefault("conditions", [])
            ready = node_condition(node, "Ready")
            if now - beat.get("observed", now) > self.grace:
                if ready is None:
                    conditions.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                                       "message": "Kubelet never posted node status.",
                                       "lastHeartbeatTime": rfc3339(), "lastTransitionTime": rfc3339()})
                    dirty = True
                for cond in conditions:
                    if cond.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure") \
                            and cond.get("status") != "Unknown":
                        cond.update(status="Unknown", reason="NodeStatusUnknown",
                                    message="Kubelet stopped posting node status.", lastTransitionTime=rfc3339())
                        dirty = True
            ready = node_condition(node, "Ready")
            state = (ready or {}).get("status", "Unknown")
            wanted = {"Unknown": "node.kubernetes.io/unreachable", "False": "node.kubernetes.io/not-ready"}.get(state)
            spec = node.setdefault("spec", {})
            taints = spec.get("taints") or []
            ours = {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}
            kept = [x for x in taints if x.get("key") not in ours or x.get("key") == wanted]
            if wanted and not any(x.get("key") == wanted for x in kept):
                kept += [{"key": wanted, "effect": "NoSchedule"},
                         {"key": wanted, "effect": "NoExecute", "timeAdded": rfc3339()}]
            if kept != taints:
                if kept:
                    spec["taints"] = kept
                else:
                    spec.pop("taints", None)
                dirty = True
            if dirty:
                node["metadata"]["resourceVersion"] = self.store.next_rv()
        return dirty

    def _approve_and_sign(self) -> bool:
        dirty = False
        for name, csr in self.store.objects["certificatesigningrequests"].items():
            spec, status = csr["spec"], csr.setdefault("status", {})
            if status.get("certificate") or csr_condition(csr, "Denied") or csr_condition(csr, "Failed"):
                continue
            try:
                req = parse_csr(base64.b64decode(spec["request"]))
            except ValueError as exc:
                log(f"csrsigning: unable to parse csr {name!r}: {exc}")
                continue
            usages = set(spec.get("usages") or [])
            if not csr_condition(csr, "Approved") and self.args.auto_approve_node_client \
                    and spec.get("signerName") == CLIENT_KUBELET_SIGNER \
                    and validate_for_signer(req, usages, CLIENT_KUBELET_SIGNER) is None:
                cn = req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
                groups = spec.get("groups") or []
                message = None
                if spec.get("username") == cn and "system:nodes" in groups:
                    message = "Auto approving self kubelet client certificate after SubjectAccessReview."
                elif any(g.startswith("system:bootstrappers") for g in groups):
                    message = "Auto approving kubelet client certificate after SubjectAccessReview."
                if message:
                    status.setdefault("conditions", []).append({
                        "type": "Approved", "status": "True", "reason": "AutoApproved", "message": message,
                        "lastUpdateTime": rfc3339(), "lastTransitionTime": rfc3339()})
                    dirty = True
            if not csr_condition(csr, "Approved"):
                continue
            signer = spec.get("signerName")
            if signer not in (SERVING_SIGNER, CLIENT_KUBELET_SIGNER, CLIENT_SIGNER):
                continue  # another signer's business, as in kube-controller-manager
            problem = validate_for_signer(req, usages, signer)
            if problem:
                status.setdefault("conditions", []).append({
                    "type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": problem,
                    "lastUpdateTime": rfc3339(), "lastTransitionTime": rfc3339()})
            else:
                try:
                    pem = self.signer.sign(req, list(spec.get("usages") or []), spec.get("expirationSeconds"))
                except ValueError as exc:
                    log(f"csrsigning: error auto signing csr {name!r}: {exc}")
                    continue
                status["certificate"] = base64.b64encode(pem).decode()
            csr["metadata"]["resourceVersion"] = self.store.next_rv()
            dirty = True
        return dirty

    def run_controllers(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.controllers_once()
                self.store.flush()
            except Exception as exc:  # pylint: disable=broad-except  # a controller must not die
                log(f"controller error: {exc!r}")
            with self.store.changed:
                if not self.store.dirty:
                    self.store.changed.wait(timeout=min(1.0, self.grace / 4))


# --------------------------------------------------------------------------- HTTP

def log(message: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    sys.stdout.write(f"{stamp} {message}\n")
    sys.stdout.flush()


GO_ALERTS = {"UNKNOWN_CA": "unknown certificate authority", "BAD_CERTIFICATE": "bad certificate",
             "CERTIFICATE_EXPIRED": "expired certificate", "CERTIFICATE_UNKNOWN": "unknown certificate",
             "INTERNAL_ERROR": "internal error", "HANDSHAKE_FAILURE": "handshake failure",
             "CERTIFICATE_REVOKED": "revoked certificate", "UNSUPPORTED_CERTIFICATE": "unsupported certificate",
             "DECRYPT_ERROR": "error decrypting message", "PROTOCOL_VERSION": "protocol version not supported"}


def handshake_error_text(exc: Exception) -> str:
    """Go's net/http log text for a failed handshake ("remote error: tls: bad certificate")."""
    reason = getattr(exc, "reason", "") or ""
    match = re.match(r"(?:TLSV1|SSLV3|TLSV13)_ALERT_(\w+)", reason)
    if match:
        return f"remote error: tls: {GO_ALERTS.get(match.group(1), match.group(1).lower().replace('_', ' '))}"
    if reason in ("CERTIFICATE_VERIFY_FAILED",):
        return f"tls: failed to verify certificate: {getattr(exc, 'verify_message', reason)}"
    return str(exc) if not reason else reason.lower().replace("_", " ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-lab"
    api: KubeApi

    def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
        pass  # one compact line per request is written by _respond

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        started = time.monotonic()
        user_name = "-"
        body = self._body()
        try:
            peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            der = self.connection.getpeercert(True) if peer else None
            user = self.api.authenticate(peer, der, self.headers.get("Authorization") or "")
            user_name = user.name
            code, payload = self.api.handle(user, self.command, self.path, self.headers, body)
        except ApiError as exc:
            code, payload = exc.code, exc.status()
        except Exception as exc:  # pylint: disable=broad-except  # answer 500 like the API server, keep serving
            code, payload = 500, ApiError(500, "InternalError", f"Internal error occurred: {exc!r}", {}).status()
        self._respond(code, payload)
        elapsed = (time.monotonic() - started) * 1000
        log(f"{self.command} {self.path} {code} user={user_name} {self.client_address[0]} {elapsed:.1f}ms")

    def _respond(self, code: int, payload: t.Any) -> None:
        if isinstance(payload, str):
            data, ctype = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(payload, separators=(",", ":")).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class TLSServer(ThreadingHTTPServer):
    """Handshakes happen in the per-connection thread, so one slow client cannot stall accept()."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext) -> None:
        self.context = context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def finish_request(self, request: t.Any, client_address: t.Any) -> None:
        request.settimeout(60)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go does; no 40 ms ACK stalls
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log(f"http: TLS handshake error from {client_address[0]}:{client_address[1]}: "
                f"{handshake_error_text(exc)}")
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass


def server_context(args: argparse.Namespace) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.tls_cert, args.tls_key)
    context.load_verify_locations(args.client_ca_file or args.ca_cert)
    context.verify_mode = ssl.CERT_OPTIONAL  # like RequestClientCert: anonymous TLS is allowed, then 401
    context.verify_flags |= NO_CHECK_TIME
    context.set_alpn_protocols(["http/1.1"])
    return context


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT to serve HTTPS on")
    parser.add_argument("--state-dir", required=True, help="directory for state.json")
    parser.add_argument("--ca-cert", required=True, help="cluster CA certificate (signer and client CA)")
    parser.add_argument("--ca-key", required=True, help="cluster CA key (the CSR signer)")
    parser.add_argument("--tls-cert", required=True, help="serving certificate (SANs decide who may verify it)")
    parser.add_argument("--tls-key", required=True, help="serving key")
    parser.add_argument("--client-ca-file", help="client CA bundle (default: --ca-cert); may hold old+new CAs")
    parser.add_argument("--node-monitor-grace-period", type=parse_duration, default=20.0,
                        help="seconds without heartbeat before Ready turns Unknown (default 20)")
    parser.add_argument("--cluster-signing-duration", type=parse_duration, default=8760 * 3600.0,
                        help="maximum lifetime of signed certificates (default 8760h)")
    parser.add_argument("--auto-approve-node-client", action=argparse.BooleanOptionalAction, default=True,
                        help="approve kubelet client CSRs like kubeadm's csrapproving bindings (serving: never)")
    parser.add_argument("--anonymous-auth", action=argparse.BooleanOptionalAction, default=False,
                        help="treat requests without credentials as system:anonymous instead of 401")
    parser.add_argument("--token-auth-file", help="static tokens CSV: token,user,uid,\"group1,group2\"")
    args = parser.parse_args(argv)
    host, _colon, port = args.listen.rpartition(":")
    args.host, args.port = host.strip("[]") or "0.0.0.0", int(port)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    api = KubeApi(args)
    Handler.api = api
    server = TLSServer((args.host, args.port), server_context(args))
    stop = threading.Event()
    threading.Thread(target=api.run_controllers, args=(stop,), daemon=True, name="controllers").start()

    def terminate(_signum: int, _frame: t.Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    log(f"Serving securely on {args.host}:{server.server_address[1]} (state {api.store.path}, "
        f"grace {api.grace:g}s)")
    server.serve_forever(poll_interval=0.2)
    stop.set()
    api.store.flush()
    log("Shut down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
