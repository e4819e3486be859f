# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the lab API stand-in reads and writes bodies: patches (JSON, merge, strategic
merge), kubectl's protobuf CSR updates, kubectl's Table output, and time formats."""
from __future__ import annotations

import argparse
import base64
import copy
import datetime
import json
import re
import time
import typing as t

from kube_api_rules import ApiError, NODES, Resource, bad_request, csr_condition, node_condition


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def rfc3339(moment: datetime.datetime | None = None) -> str:
    return (moment or now_utc()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


def human_duration(seconds: float) -> str:
    """The age format of kubectl's printers (k8s.io/apimachinery duration.HumanDuration)."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes, hours = secs // 60, secs // 3600
    if minutes < 10:
        return f"{minutes}m" if secs % 60 == 0 else f"{minutes}m{secs % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def parse_duration(text: str) -> float:
    """Go-style durations ("8760h", "30s", "1h30m") or plain seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


# --------------------------------------------------------------------------- patches

class PatchError(Exception):
    pass


def merge_patch(target: t.Any, patch: t.Any) -> t.Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# patchMergeKey of the list fields that use patchStrategy=merge in core/v1 Node and meta/v1
MERGE_KEYS = {"conditions": "type", "addresses": "type", "taints": "key", "volumesAttached": "name",
              "ownerReferences": "uid", "podCIDRs": None, "finalizers": None}


def strategic_merge_patch(target: t.Any, patch: t.Any) -> t.Any:
    """Strategic merge patch for the fields these resources have (simplified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field, []) if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS:
            result[key] = _merge_list(result.get(key) or [], value, MERGE_KEYS[key])
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(current: list[t.Any], patch: list[t.Any], key: str | None) -> list[t.Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if key is None:  # a set of primitives
        return current + [p for p in patch if p not in current]
    result = [copy.deepcopy(c) for c in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, c in enumerate(result) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append({k: v for k, v in item.items() if not k.startswith("$")})
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer must begin with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: t.Any, parts: list[str]) -> t.Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def json_patch(doc: t.Any, ops: t.Any) -> t.Any:
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        try:
            if kind in ("add", "replace", "remove", "test"):
                parent, last = _walk(doc, parts[:-1]), parts[-1] if parts else None
            if kind == "test":
                if _walk(doc, parts) != op.get("value"):
                    raise PatchError(f"testing value {op.get('path')} failed")
            elif kind in ("add", "replace"):
                value = copy.deepcopy(op.get("value"))
                if last is None:
                    doc = value
                elif isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    if kind == "add":
                        parent.insert(index, value)
                    else:
                        parent[index] = value
                else:
                    if kind == "replace" and last not in parent:
                        raise PatchError(f"replace operation does not apply: doc is missing key: {op.get('path')}")
                    parent[last] = value
            elif kind == "remove":
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            elif kind in ("move", "copy"):
                source = _pointer(op.get("from", ""))
                value = copy.deepcopy(_walk(doc, source))
                if kind == "move":
                    holder = _walk(doc, source[:-1])
                    if isinstance(holder, list):
                        holder.pop(int(source[-1]))
                    else:
                        del holder[source[-1]]
                doc = json_patch(doc, [{"op": "add", "path": op.get("path"), "value": value}])
            else:
                raise PatchError(f"Unexpected kind: {kind}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise PatchError(f"{kind} operation does not apply: doc is missing path: {op.get('path')}: {exc}") \
                from None
    return doc


PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")


def apply_patch(content_type: str, target: dict[str, t.Any], raw: bytes) -> dict[str, t.Any]:
    base = content_type.split(";")[0].strip()
    if base not in PATCH_TYPES[:3]:
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types include: "
                       f"{', '.join(PATCH_TYPES)}", {})
    try:
        patch = json.loads(raw or b"null")
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from None
    try:
        if base == PATCH_TYPES[0]:
            result = json_patch(target, patch)
        elif base == PATCH_TYPES[1]:
            result = merge_patch(target, patch)
        else:
            result = strategic_merge_patch(target, patch)
    except PatchError as exc:
        raise ApiError(422, "Invalid", str(exc), {}) from None
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce an object")
    return result


# --------------------------------------------------------------------------- protobuf

PROTOBUF = "application/vnd.kubernetes.protobuf"


def _varint(data: bytes, index: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index
        shift += 7


def _pb_fields(data: bytes) -> t.Iterator[tuple[int, t.Any]]:
    """(field number, value) pairs of one protobuf message; nested messages stay bytes."""
    index = 0
    while index < len(data):
        key, index = _varint(data, index)
        wire = key & 7
        if wire == 0:
            value, index = _varint(data, index)
        elif wire == 2:
            length, index = _varint(data, index)
            value, index = data[index:index + length], index + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, index = data[index:index + size], index + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield key >> 3, value


def _pb_time(data: bytes) -> str:
    seconds = dict(_pb_fields(data)).get(1, 0)
    return rfc3339(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc))


def decode_protobuf_csr(body: bytes) -> dict[str, t.Any]:
    """The fields of a protobuf CertificateSigningRequest that PUT endpoints read (kubectl's typed
    client sends protobuf for `certificate approve`): metadata name/resourceVersion/labels/annotations
    and status conditions/certificate. The spec is immutable, so it is not decoded."""
    if not body.startswith(b"k8s\x00"):
        raise bad_request("protobuf body without the k8s envelope")
    raw = dict(_pb_fields(body[4:])).get(2, b"")
    obj: dict[str, t.Any] = {"metadata": {}, "status": {}}
    for number, value in _pb_fields(raw):
        if number == 1:
            meta = obj["metadata"]
            for field, item in _pb_fields(value):
                if field in (1, 5, 6):
                    meta[{1: "name", 5: "uid", 6: "resourceVersion"}[field]] = item.decode()
                elif field in (11, 12):
                    entry = dict(_pb_fields(item))
                    meta.setdefault("labels" if field == 11 else "annotations", {})[
                        entry.get(1, b"").decode()] = entry.get(2, b"").decode()
        elif number == 3:
            for field, item in _pb_fields(value):
                if field == 2:
                    obj["status"]["certificate"] = base64.b64encode(item).decode()
                elif field == 1:
                    names = {1: "type", 2: "reason", 3: "message", 4: "lastUpdateTime",
                             5: "lastTransitionTime", 6: "status"}
                    cond: dict[str, t.Any] = {}
                    for key, part in _pb_fields(item):
                        if key in (4, 5):
                            cond[names[key]] = _pb_time(part)
                        elif key in names:
                            cond[names[key]] = part.decode()
                    obj["status"].setdefault("conditions", []).append(cond)
    return obj


# --------------------------------------------------------------------------- tables (kubectl get)

def table_version(headers: t.Mapping[str, str]) -> str | None:
    for option in (headers.get("Accept") or "").split(","):
        params = dict(p.strip().split("=", 1) for p in option.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return params["v"]
        if option.split(";")[0].strip() in ("application/json", "*/*"):
            return None
    return None


def render_table(res: Resource, items: list[dict[str, t.Any]], version: str, rv: str) -> dict[str, t.Any]:
    now = time.time()

    def age(obj: dict[str, t.Any]) -> str:
        return human_duration(now - parse_rfc3339(obj["metadata"]["creationTimestamp"]).timestamp())
    if res is NODES:
        columns = [("Name", "name", 0), ("Status", "", 0), ("Roles", "", 0), ("Age", "", 0), ("Version", "", 0),
                   ("Internal-IP", "", 1), ("External-IP", "", 1), ("OS-Image", "", 1), ("Kernel-Version", "", 1),
                   ("Container-Runtime", "", 1)]
        rows = [[o["metadata"]["name"], _node_status(o), _node_roles(o), age(o),
                 ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""),
                 _address(o, "InternalIP"), _address(o, "ExternalIP"),
                 ((o.get("status") or {}).get("nodeInfo") or {}).get("osImage", "<unknown>"),
                 ((o.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion", "<unknown>"),
                 ((o.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion", "<unknown>")]
                for o in items]
    else:
        columns = [("Name", "name", 0), ("Age", "", 0), ("SignerName", "", 0), ("Requestor", "", 0),
                   ("RequestedDuration", "", 0), ("Condition", "", 0)]
        rows = [[o["metadata"]["name"], age(o), o["spec"].get("signerName", ""), o["spec"].get("username", ""),
                 human_duration(o["spec"]["expirationSeconds"]) if o["spec"].get("expirationSeconds") else "<none>",
                 _csr_condition(o)] for o in items]
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": {"resourceVersion": rv},
            "columnDefinitions": [{"name": n, "type": "string", "format": f, "description": n, "priority": p}
                                  for n, f, p in columns],
            "rows": [{"cells": cells, "object": {"kind": "PartialObjectMetadata",
                                                 "apiVersion": f"meta.k8s.io/{version}",
                                                 "metadata": obj["metadata"]}}
                     for cells, obj in zip(rows, items)]}


def _node_status(node: dict[str, t.Any]) -> str:
    ready = node_condition(node, "Ready")
    text = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    return text + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


def _node_roles(node: dict[str, t.Any]) -> str:
    labels = node["metadata"].get("labels") or {}
    roles = {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _address(node: dict[str, t.Any], kind: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == kind:
            return address.get("address", "")
    return "<none>"


def _csr_condition(csr: dict[str, t.Any]) -> str:
    if csr_condition(csr, "Denied"):
        text = "Denied"
    elif csr_condition(csr, "Approved"):
        text = "Approved"
    else:
        text = "Pending"
    if csr_condition(csr, "Failed"):
        text += ",Failed"
    if (csr.get("status") or {}).get("certificate"):
        text += ",Issued"
    return text
