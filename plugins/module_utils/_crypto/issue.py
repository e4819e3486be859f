# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA-host half of issuance: decide, check the CSR, sign. Shared by the
``kubelet_cert_sign`` module (CA on a managed host) and the ``kubelet_cert`` action plugin
(CA on the controller), so both apply the same policy and report the same way.
"""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils._crypto import reissue, signing
from ansible_collections.kubecerts.kubelet.plugins.module_utils._errors import KubecertsError, SigningRefused

SIGN_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "ca_cert_path": {"type": "path", "required": True},
    "ca_key_path": {"type": "path", "required": True},
    "ca_key_passphrase": {"type": "str", "no_log": True},
    "validity_days": {"type": "int", "default": signing.DEFAULT_VALIDITY_DAYS},
    "renew_before_days": {"type": "int", "default": reissue.DEFAULT_RENEW_BEFORE_DAYS},
    "force": {"type": "bool", "default": False},
    "extra_sans": {"type": "list", "elements": "str", "default": []},
}

REQUEST_FIELDS_SPEC: dict[str, dict[str, t.Any]] = {
    "node_name": {"type": "str"},
    "kind": {"type": "str", "choices": list(signing.KINDS)},
    "csr": {"type": "str"},
    "hostname": {"type": "str"},
    "ip_addresses": {"type": "list", "elements": "str", "default": []},
    "current_certificate": {"type": "str"},
    "node_reasons": {"type": "list", "elements": "dict", "default": []},
}


def load_ca(params: t.Mapping[str, t.Any]) -> signing.CertificateAuthority:
    passphrase = params.get("ca_key_passphrase")
    return signing.CertificateAuthority.from_files(
        params["ca_cert_path"], params["ca_key_path"],
        passphrase.encode("utf-8") if passphrase else None)


def issue_request(params: t.Mapping[str, t.Any]) -> signing.IssueRequest:
    if params.get("renew_before_days", 0) < 0:
        raise SigningRefused(f"renew_before_days must not be negative (got {params['renew_before_days']})")
    return signing.IssueRequest(
        node_name=params["node_name"], kind=params["kind"], hostname=params.get("hostname"),
        ip_addresses=params.get("ip_addresses") or (), extra_sans=params.get("extra_sans") or (),
        validity_days=params.get("validity_days", signing.DEFAULT_VALIDITY_DAYS))


def sign_one(ca: signing.CertificateAuthority, params: t.Mapping[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """Judges the certificate in use and, when a reason exists, signs the CSR under the policy.
    The CSR is checked even in check mode, so check mode reports the refusals a real run meets."""
    request = issue_request(params)
    signing.planned_names(request)      # refuses a bad node name or SAN before anything else
    kind = request.kind
    reasons = reissue.judge(params.get("current_certificate"), request, ca.cert,
                            renew_before_days=params.get("renew_before_days", reissue.DEFAULT_RENEW_BEFORE_DAYS),
                            force=bool(params.get("force")), node_reasons=params.get("node_reasons") or (),
                            source=f"{kind} certificate in use")
    csr = params.get("csr")
    if csr:
        source = f"{kind} CSR of {request.node_name}"
        signing.check_csr(signing.load_csr(csr, source), request, signing.planned_names(request), source)
    result: dict[str, t.Any] = {
        "kind": kind,
        "node_name": request.node_name,
        "changed": bool(reasons),
        "issued": False,
        "reasons": [r.as_dict() for r in reasons],
        "certificate": None,
        "before": reissue.summary(params.get("current_certificate")),
        "after": None,
        "warnings": [],
    }
    if not reasons:
        return result
    if check_mode or not csr:
        if not check_mode:
            raise SigningRefused(f"{kind} certificate of {request.node_name} must be reissued "
                                 f"({reasons[0].code}), but no CSR was given")
        result["after"] = signing.describe_planned(ca.cert, request)
        return result
    issued = signing.sign_csr(ca, csr, request, source=f"{kind} CSR of {request.node_name}")
    result.update(issued=True, certificate=issued.pem, after=reissue.summary(issued.pem),
                  warnings=issued.warnings)
    return result


def diff_of(results: t.Iterable[dict[str, t.Any]]) -> dict[str, t.Any]:
    """Before/after per kind: subject, SANs, issuer, expiry, fingerprint. No key material."""
    before, after = {}, {}
    for item in results:
        before[item["kind"]] = item.get("before")
        after[item["kind"]] = item.get("after") if item.get("changed") else item.get("before")
    return {"before": before, "after": after}


# Per-node fields a batch item may carry; everything else comes from the module's options.
# Per-node settings an item may carry; they override the task's options for that item, so a
# batch signed in one run can force one node and leave the next alone.
PER_ITEM_OPTIONS = ("force", "renew_before_days", "validity_days")
BATCH_ITEM_FIELDS = ("node_name", "kind", "csr", "hostname", "ip_addresses", "current_certificate",
                     "node_reasons", "extra_sans") + PER_ITEM_OPTIONS


def batch_items(requests: t.Any) -> list[dict[str, t.Any]]:
    """Flattens ``requests``: a mapping of inventory host to its kubelet_csr result, or a
    list whose entries are either one item (``node_name``, ``kind``, ...) or a whole
    kubelet_csr result (``node_name``, ``node``, ``requests``, ``extra_sans``) with an
    optional ``host``; a kubelet_csr result becomes one item per kind."""
    if isinstance(requests, dict):
        requests = [{**(value if isinstance(value, dict) else {"_bad": value}), "host": host}
                    for host, value in requests.items()]
    if not isinstance(requests, list):
        raise SigningRefused("requests must be a list, or a mapping of host to kubelet_csr result")
    items: list[dict[str, t.Any]] = []
    for index, entry in enumerate(requests):
        if not isinstance(entry, dict):
            raise SigningRefused(f"requests[{index}] is not a mapping")
        host = entry.get("host")
        if isinstance(entry.get("requests"), dict):
            node = entry.get("node") or {}
            for kind, request in entry["requests"].items():
                items.append({"host": host, "node_name": entry.get("node_name"), "kind": kind,
                              "csr": request.get("csr"), "hostname": node.get("hostname"),
                              "ip_addresses": node.get("ip_addresses") or [],
                              "current_certificate": request.get("current_certificate"),
                              "node_reasons": request.get("node_reasons") or [],
                              "extra_sans": entry.get("extra_sans"),
                              **{k: entry.get(k) for k in PER_ITEM_OPTIONS}})
        else:
            items.append({"host": host, **{k: entry.get(k) for k in BATCH_ITEM_FIELDS}})
    return items


def sign_many(ca: signing.CertificateAuthority, options: t.Mapping[str, t.Any],
              items: t.Sequence[t.Mapping[str, t.Any]], check_mode: bool) -> list[dict[str, t.Any]]:
    """Signs a batch with one CA load. A refusal fails its own item (``failed``, ``msg``)
    and not the others, so one bad node does not stop a fleet."""
    results = []
    for item in items:
        params = {**options, **{k: v for k, v in item.items() if v is not None and k != "host"}}
        try:
            if not params.get("node_name") or params.get("kind") not in signing.KINDS:
                raise SigningRefused("a request needs node_name and kind (client or serving)")
            result = sign_one(ca, params, check_mode)
        except KubecertsError as exc:
            result = {"kind": params.get("kind"), "node_name": params.get("node_name"), "changed": False,
                      "issued": False, "reasons": [], "certificate": None, "before": None, "after": None,
                      "warnings": [], "failed": True, "msg": str(exc)}
        result["host"] = item.get("host")
        results.append(result)
    return results
