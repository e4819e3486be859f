# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the lab API stand-in decides: Status errors, resources, identities and the
authorizers (Node authorizer + the default RBAC that matters for kubelets)."""
from __future__ import annotations

import base64
import hashlib
import typing as t

SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0+kubecerts-lab",
                  "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                  "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
                  "platform": "linux/amd64"}
CERT_GROUP = "certificates.k8s.io"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
CLIENT_KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
ADMIN_GROUPS = ("system:masters", "kubeadm:cluster-admins")
NO_CHECK_TIME = 0x200000  # X509_V_FLAG_NO_CHECK_TIME: expiry is judged after the handshake (401, as upstream)
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the API server's generateName alphabet


# --------------------------------------------------------------------------- errors

class ApiError(Exception):
    """An error answered as a metav1.Status body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, t.Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, t.Any]:
        body: dict[str, t.Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": self.message}
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str) -> dict[str, t.Any]:
    details: dict[str, t.Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                    _details(resource, group, name))


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                    _details(resource, group, name))


def forbidden(resource: str, group: str, name: str, why: str) -> ApiError:
    if not resource:
        return ApiError(403, "Forbidden", f"forbidden: {why}", {})
    what = qualified(resource, group)
    message = f'{what} "{name}" is forbidden: {why}' if name else f"{what} is forbidden: {why}"
    return ApiError(403, "Forbidden", message, _details(resource, group, name))


def conflict(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": '
                    "the object has been modified; please apply your changes to the latest version and try again",
                    _details(resource, group, name))


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """causes: (reason, field, message-without-field)."""
    what = f"{kind}.{group}" if group else kind
    text = "; ".join(f"{field}: {msg}" for _reason, field, msg in causes)
    text = f"[{text}]" if len(causes) > 1 else text
    details = {"name": name, "group": group, "kind": kind,
               "causes": [{"reason": r, "message": m, "field": f} for r, f, m in causes]}
    if not group:
        del details["group"]
    return ApiError(422, "Invalid", f'{what} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message, None)


UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized", None)
NO_RESOURCE = ApiError(404, "NotFound", "the server could not find the requested resource", {})


# --------------------------------------------------------------------------- resources

class Resource(t.NamedTuple):
    group: str
    plural: str
    singular: str
    kind: str
    short: tuple[str, ...]
    subresources: tuple[str, ...]


NODES = Resource("", "nodes", "node", "Node", ("no",), ("status",))
CSRS = Resource(CERT_GROUP, "certificatesigningrequests", "certificatesigningrequest",
                "CertificateSigningRequest", ("csr",), ("approval", "status"))
RESOURCES = {("", "v1", "nodes"): NODES, (CERT_GROUP, "v1", "certificatesigningrequests"): CSRS}
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def api_resource_list(group_version: str, res: Resource) -> dict[str, t.Any]:
    resources: list[dict[str, t.Any]] = [{
        "name": res.plural, "singularName": res.singular, "namespaced": False, "kind": res.kind,
        "verbs": ALL_VERBS, "shortNames": list(res.short),
        "storageVersionHash": base64.b64encode(hashlib.sha256(res.kind.encode()).digest()[:8]).decode()}]
    for sub in res.subresources:
        resources.append({"name": f"{res.plural}/{sub}", "singularName": "", "namespaced": False,
                          "group": res.group, "version": "v1", "kind": res.kind,
                          "verbs": ["get", "patch", "update"]})
        if not res.group:
            del resources[-1]["group"], resources[-1]["version"]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def group_entry() -> dict[str, t.Any]:
    version = {"groupVersion": f"{CERT_GROUP}/v1", "version": "v1"}
    return {"name": CERT_GROUP, "versions": [version], "preferredVersion": version}


# --------------------------------------------------------------------------- identities

class User(t.NamedTuple):
    name: str
    groups: tuple[str, ...]
    cert_sha256: str = ""

    @property
    def node_name(self) -> str | None:
        """The Node authorizer's NodeIdentity: system:node:<name> in group system:nodes."""
        if self.name.startswith("system:node:") and "system:nodes" in self.groups:
            return self.name[len("system:node:"):]
        return None

    @property
    def is_admin(self) -> bool:
        return any(g in ADMIN_GROUPS for g in self.groups)


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


class Attrs(t.NamedTuple):
    """The authorizer's view of a request (k8s.io/apiserver authorizer.Attributes)."""
    verb: str
    path: str
    resource: str = ""
    group: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


DISCOVERY_PREFIXES = ("/api", "/apis", "/openapi", "/version")
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")


def _node_authorizer(node: str, a: Attrs) -> tuple[bool, str]:
    """plugin/pkg/auth/authorizer/node with AuthorizeNodeWithSelectors (1.32 default)."""
    if a.group == "" and a.resource == "nodes":
        if a.subresource == "":
            if a.verb in ("create", "update", "patch"):
                return True, ""  # NodeRestriction admission narrows these to the node's own object
            if a.verb in ("get", "list", "watch"):
                if a.name == node:
                    return True, ""
                if not a.name:
                    return False, f"node '{node}' cannot read all nodes, only its own Node object"
                return False, f"node '{node}' cannot read '{a.name}', only its own Node object"
        elif a.subresource == "status" and a.verb in ("update", "patch"):
            return True, ""
        return False, ""
    if a.group == CERT_GROUP and a.resource == "certificatesigningrequests" and not a.subresource:
        return a.verb in ("create", "get", "list", "watch"), ""  # the static NodeRules
    return False, ""


def _rbac(user: User, a: Attrs) -> bool:
    """The default bootstrap policy that matters here (system:discovery, public-info-viewer,
    kubeadm's bootstrapper bindings)."""
    if not a.is_resource:
        if a.verb == "get" and a.path in PUBLIC_PATHS:
            return True
        authenticated = "system:authenticated" in user.groups
        return authenticated and a.verb == "get" and any(
            a.path == p or a.path.startswith(p + "/") for p in DISCOVERY_PREFIXES)
    if any(g.startswith("system:bootstrappers") for g in user.groups):
        if a.group == CERT_GROUP and a.resource == "certificatesigningrequests" and not a.subresource:
            return a.verb in ("create", "get", "list", "watch")
        if a.resource == "nodes" and a.verb == "get" and not a.subresource:
            return True
    return False


def authorize(user: User, a: Attrs) -> None:
    """Raises the Forbidden Status the API server writes (responsewriters.Forbidden)."""
    if user.is_admin:
        return
    reasons = []
    node = user.node_name
    if node is not None:
        allowed, reason = _node_authorizer(node, a)
        if allowed:
            return
        if reason:
            reasons.append(reason)
    elif user.name.startswith("system:node:") or "system:nodes" in user.groups:
        pass  # not a node identity: RBAC alone decides
    if _rbac(user, a):
        return
    if not a.is_resource:
        why = f'User "{user.name}" cannot {a.verb} path "{a.path}"'
    else:
        res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        why = f'User "{user.name}" cannot {a.verb} resource "{res}" in API group "{a.group}" at the cluster scope'
    if reasons:
        why += ": " + ", ".join(reasons)
    raise forbidden(a.resource, a.group, a.name, why)


def csr_condition(csr: dict[str, t.Any], kind: str) -> dict[str, t.Any] | None:
    for cond in (csr.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def node_condition(node: dict[str, t.Any], kind: str) -> dict[str, t.Any] | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None
