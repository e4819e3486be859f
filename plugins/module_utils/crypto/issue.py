# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA-host half of issuance: decide, check the CSR, sign. Shared by the
``kubelet_cert_sign`` module (CA on a managed host) and the ``kubelet_cert`` action plugin
(CA on the controller), so both apply the same policy and report the same way.
"""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_policy as policy
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import pem
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import reissue
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import kubelet_request
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import signing
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import KubecertsError, SigningRefused

SIGN_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "ca_cert_path": {"type": "path", "required": True},
    "ca_key_path": {"type": "path", "required": True},
    "ca_key_passphrase": {"type": "str", "no_log": True},
    "validity_days": {"type": "int", "default": kubelet_request.DEFAULT_VALIDITY_DAYS},
    "renew_before_days": {"type": "int", "default": reissue.DEFAULT_RENEW_BEFORE_DAYS},
    "force": {"type": "bool", "default": False},
    "extra_sans": {"type": "list", "elements": "str", "default": []},
    "service_cidr": {"type": "list", "elements": "str", "default": list(policy.DEFAULT_SERVICE_CIDRS)},
    "cluster_domain": {"type": "str", "default": policy.DEFAULT_CLUSTER_DOMAIN},
    "max_dns_sans": {"type": "int", "default": policy.DEFAULT_MAX_DNS_SANS},
    "max_validity_days": {"type": "int", "default": policy.DEFAULT_MAX_VALIDITY_DAYS},
}

# csr and current_certificate come from the node, which reduces them to a CSR and certificate
# blocks (run_module refuses a result holding a key); the signer reduces current_certificate
# again (certificate_only) and never echoes it. They are not no_log: Ansible would then mask
# every equal string in the result, names included.
REQUEST_FIELDS_SPEC: dict[str, dict[str, t.Any]] = {
    "node_name": {"type": "str"},
    "kind": {"type": "str", "choices": list(kubelet_request.KINDS)},
    "csr": {"type": "str"},
    "hostname": {"type": "str"},
    "ip_addresses": {"type": "list", "elements": "str", "default": []},
    "current_certificate": {"type": "str"},
    "node_reasons": {"type": "list", "elements": "dict", "default": []},
}


def rules_of(params: t.Mapping[str, t.Any]) -> policy.Rules:
    return policy.build_rules(params.get("service_cidr") or policy.DEFAULT_SERVICE_CIDRS,
                              params.get("cluster_domain") or policy.DEFAULT_CLUSTER_DOMAIN,
                              params.get("max_dns_sans", policy.DEFAULT_MAX_DNS_SANS),
                              params.get("max_validity_days", policy.DEFAULT_MAX_VALIDITY_DAYS))


def load_ca(params: t.Mapping[str, t.Any]) -> signing.CertificateAuthority:
    rules_of(params)    # a malformed policy option fails before the CA key is read
    passphrase = params.get("ca_key_passphrase")
    return signing.CertificateAuthority.from_files(
        params["ca_cert_path"], params["ca_key_path"],
        passphrase.encode("utf-8") if passphrase else None)


def issue_request(params: t.Mapping[str, t.Any]) -> kubelet_request.IssueRequest:
    if params.get("renew_before_days", 0) < 0:
        raise SigningRefused(f"renew_before_days must not be negative (got {params['renew_before_days']})")
    return kubelet_request.IssueRequest(
        node_name=params["node_name"], kind=params["kind"], hostname=params.get("hostname"),
        ip_addresses=params.get("ip_addresses") or (), extra_sans=params.get("extra_sans") or (),
        validity_days=params.get("validity_days", kubelet_request.DEFAULT_VALIDITY_DAYS), rules=rules_of(params))


def certificate_only(value: t.Any) -> str | None:
    """The certificate blocks of what a node sent as its certificate in use, nothing else:
    a node that puts a key there must not have it judged, echoed or logged."""
    if not value:
        return None
    blocks = pem.certificate_blocks(str(value).encode("ascii", "replace"))
    return b"".join(b.text + b"\n" for b in blocks).decode("ascii") or None


def sign_one(ca: signing.CertificateAuthority, params: t.Mapping[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """Judges the certificate in use and, when a reason exists, signs the CSR under the policy.
    The CSR is checked even in check mode, so check mode reports the refusals a real run meets."""
    request = issue_request(params)
    kubelet_request.planned_names(request)      # refuses a bad node name or SAN before anything else
    kind = request.kind
    current = certificate_only(params.get("current_certificate"))
    reasons = reissue.judge(current, request, ca.cert,
                            renew_before_days=params.get("renew_before_days", reissue.DEFAULT_RENEW_BEFORE_DAYS),
                            force=bool(params.get("force")), node_reasons=params.get("node_reasons") or (),
                            source=f"{kind} certificate in use")
    csr = params.get("csr")
    if csr:
        source = f"{kind} CSR of {request.node_name}"
        signing.check_csr(signing.load_csr(csr, source), request, kubelet_request.planned_names(request), source)
    result: dict[str, t.Any] = {
        "kind": kind,
        "node_name": request.node_name,
        "changed": bool(reasons),
        "issued": False,
        "reasons": [r.as_dict() for r in reasons],
        "certificate": None,
        "before": reissue.summary(current),
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


# Per-node settings an item may carry; they override the task's options for that item, so a
# batch signed in one run can force one node and leave the next alone.
PER_ITEM_OPTIONS = ("force", "renew_before_days", "validity_days")


def truth_request(truth: policy.NodeTruth, reported_name: t.Any, extra_sans: t.Sequence[str]) -> dict[str, t.Any]:
    """The identity fields of a request, from the controller's truth only. The node's reported
    name is taken only when it is one of the names the controller accepts for it."""
    name = reported_name if reported_name in truth.accepted_names else truth.node_name
    return {"node_name": name, "hostname": None, "ip_addresses": list(truth.ip_addresses),
            "extra_sans": [f"DNS:{d}" for d in truth.dns_names if d != name] + list(extra_sans or ())}


def _refused(host: t.Any, message: str, kind: t.Any = None, node_name: t.Any = None) -> dict[str, t.Any]:
    return {"host": host, "kind": kind, "node_name": node_name, "refused": message}


def batch_items(requests: t.Any, identities: t.Any) -> list[dict[str, t.Any]]:
    """One item per host and kind from ``requests`` (a mapping of inventory host to its
    kubelet_csr result, or a list of such results each with ``host``). Identity and SANs come
    from ``identities`` (host to the controller's truth); what the node reported is only
    compared with it, and a node that contradicts it, or that has no truth, becomes a refused
    item. A malformed entry refuses its own host, never the batch."""
    if isinstance(requests, dict):
        requests = [{**(value if isinstance(value, dict) else {"_bad": value}), "host": host}
                    for host, value in requests.items()]
    if not isinstance(requests, list):
        raise SigningRefused("requests must be a list, or a mapping of host to kubelet_csr result")
    if not isinstance(identities, dict):
        raise SigningRefused("identities (the controller's node_identity result per host) are required with "
                             "requests: a node's own report never decides its identity")
    items: list[dict[str, t.Any]] = []
    for index, entry in enumerate(requests):
        host = entry.get("host") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("requests"), dict):
            items.append(_refused(host, f"requests[{index}] ({host or 'no host'}) is not a kubelet_csr result"))
            continue
        if host not in identities:
            items.append(_refused(host, f"no controller identity for host {host!r}; refusing to take the node's "
                                        "word for its name and addresses"))
            continue
        try:
            truth = policy.NodeTruth.from_dict(str(host), identities[host])
        except KubecertsError as exc:
            items.append(_refused(host, str(exc)))
            continue
        node = entry.get("node")
        node = node if isinstance(node, dict) else {}
        problems = truth.disagreements(entry.get("node_name"), node.get("ip_addresses"))
        identity = truth_request(truth, entry.get("node_name"), identities[host].get("extra_sans") or ())
        for kind, request in entry["requests"].items():
            if problems or not isinstance(request, dict):
                items.append(_refused(host, problems[0] if problems else f"{host}: {kind} request is not a mapping",
                                      kind, truth.node_name))
                continue
            items.append({"host": host, "kind": kind, **identity, "csr": request.get("csr"),
                          "current_certificate": request.get("current_certificate"),
                          "node_reasons": request.get("node_reasons") or [],
                          **{k: entry.get(k) for k in PER_ITEM_OPTIONS}})
    return items


def sign_many(ca: signing.CertificateAuthority, options: t.Mapping[str, t.Any],
              items: t.Sequence[t.Mapping[str, t.Any]], check_mode: bool) -> list[dict[str, t.Any]]:
    """Signs a batch with one CA load. A refusal fails its own item (``failed``, ``msg``)
    and not the others, so one bad node does not stop a fleet."""
    results = []
    for item in items:
        params = {**options, **{k: v for k, v in item.items() if v is not None and k != "host"}}
        params["extra_sans"] = list(item.get("extra_sans") or ()) + list(options.get("extra_sans") or ())
        try:
            if item.get("refused"):
                raise SigningRefused(item["refused"])
            if not params.get("node_name") or params.get("kind") not in kubelet_request.KINDS:
                raise SigningRefused("a request needs node_name and kind (client or serving)")
            result = sign_one(ca, params, check_mode)
        except (KubecertsError, TypeError, ValueError, AttributeError) as exc:
            # Node data of the wrong shape is this item's problem, never the batch's.
            message = str(exc) if isinstance(exc, KubecertsError) else \
                f"{item.get('host')}: malformed request ({type(exc).__name__})"
            result = {"kind": params.get("kind"), "node_name": params.get("node_name"), "changed": False,
                      "issued": False, "reasons": [], "certificate": None, "before": None, "after": None,
                      "warnings": [], "failed": True, "msg": message}
        result["host"] = item.get("host")
        results.append(result)
    return results
