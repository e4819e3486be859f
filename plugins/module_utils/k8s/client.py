# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API access for every module that talks to the cluster (controller side).

The authentication options (``common/k8s_auth.py``) carry kubernetes.core's names. Requests go through the official
``kubernetes`` client (its kubeconfig loader, TLS and auth handling) but exchange plain
Kubernetes JSON: the policies read objects exactly as the API documents them, and no
model class of one client release decides which fields exist.

Every failure leaves here as one line carrying the API's own status, reason and message:
``KubernetesApiError`` when the API answered with an error, ``KubernetesUnreachable`` when
it could not be reached or its certificate did not verify.
"""
from __future__ import annotations

import json
import os
import ssl
import typing as t
import urllib.parse

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    InputFileError,
    KubernetesApiError,
    KubernetesUnreachable,
    MissingLibrary,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.k8s_auth import DEFAULT_REQUEST_TIMEOUT
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import one_line

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as _exc:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = _exc


def require_kubernetes() -> None:
    if not HAS_KUBERNETES:
        raise MissingLibrary("the Python package 'kubernetes' is required on the host running this module "
                             f"(pip install kubernetes): {KUBERNETES_IMPORT_ERROR}")


def _check_file(option: str, path: str | None) -> None:
    if path and not os.path.isfile(path):
        raise InputFileError(path, f"{option}: no such file")


def build_configuration(params: t.Mapping[str, t.Any]) -> t.Any:
    """A ``kubernetes.client.Configuration`` from the auth options, kubeconfig first, then
    explicit options on top (as kubernetes.core does)."""
    require_kubernetes()
    configuration = k8s_client.Configuration()
    kubeconfig = params.get("kubeconfig")
    for option in ("kubeconfig", "client_cert", "client_key", "ca_cert"):
        _check_file(option, params.get(option))
    if kubeconfig or not params.get("host"):
        _load_kubeconfig(configuration, kubeconfig, params.get("context"))
    if params.get("host"):
        configuration.host = params["host"]
    if params.get("api_key"):
        token = str(params["api_key"])
        configuration.api_key = {"authorization": token if token.lower().startswith("bearer ") else f"Bearer {token}"}
    if params.get("client_cert"):
        configuration.cert_file = params["client_cert"]
    if params.get("client_key"):
        configuration.key_file = params["client_key"]
    if params.get("ca_cert"):
        configuration.ssl_ca_cert = params["ca_cert"]
    if params.get("validate_certs") is not None:
        configuration.verify_ssl = bool(params["validate_certs"])
    if params.get("proxy"):
        configuration.proxy = params["proxy"]
    # Retry refused connections briefly, never a request the server may have acted on.
    configuration.retries = urllib3.util.Retry(total=2, connect=2, read=0, redirect=0, status=0,
                                               backoff_factor=0.2, raise_on_status=False)
    return configuration


def _load_kubeconfig(configuration: t.Any, path: str | None, context: str | None) -> None:
    if not path and os.environ.get("KUBERNETES_SERVICE_HOST") and not context:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return
        except ConfigException:
            pass  # not really in a pod: fall through to the default kubeconfig
    where = path or os.path.expanduser(os.environ.get("KUBECONFIG", "~/.kube/config"))
    try:
        k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration,
                                    persist_config=False)
    except ConfigException as exc:
        raise InputFileError(where, f"not a usable kubeconfig: {one_line(exc)}") from None
    except Exception as exc:  # pylint: disable=broad-except
        # Broken YAML and unexpected shapes surface as assorted errors from inside the loader.
        raise InputFileError(where, f"not a usable kubeconfig: {type(exc).__name__}: {one_line(exc)}") from None


_Client = t.TypeVar("_Client", bound="KubeClient")


class KubeClient:
    """Plain-JSON requests against one API server."""

    def __init__(self, configuration: t.Any, request_timeout: int = DEFAULT_REQUEST_TIMEOUT) -> None:
        self.api_client = k8s_client.ApiClient(configuration)
        self.api_client.user_agent = "kubecerts.kubelet"
        self.host = configuration.host
        self.timeout = request_timeout

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> KubeClient:
        return cls(build_configuration(params), int(params.get("request_timeout") or DEFAULT_REQUEST_TIMEOUT))

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.close()

    # -- generic verbs ------------------------------------------------------------------
    def request(self, method: str, path: str, body: t.Any = None,
                query: t.Sequence[tuple[str, str]] = ()) -> t.Any:
        """Sends one request; returns the decoded JSON body or raises a one-line ApprovalError."""
        what = f"{method} {path}"
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        data: bytes | str | None       # bytes from the wire, str or None from an ApiException
        try:
            status, data = self._send(method, path, headers, body, list(query))
        except ApiException as exc:  # the legacy REST layer raises for non-2xx itself
            status, data = int(exc.status or 0), exc.body
            if not status:
                raise KubernetesUnreachable(f"Kubernetes API {self.host}: {what}: {one_line(exc.reason)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = _root_cause(exc)
            if isinstance(cause, ssl.SSLError):
                raise KubernetesUnreachable(f"Kubernetes API {self.host}: {what}: TLS handshake failed: "
                                            f"{_cause_text(cause)}", "TLSError") from None
            raise KubernetesUnreachable(f"Kubernetes API {self.host} unreachable: {what}: {_cause_text(cause)}") from None
        if not 200 <= status <= 299:
            raise _api_error(self.host, what, status, data)
        try:
            return json.loads(data) if data else {}
        except ValueError:
            raise KubernetesApiError(f"Kubernetes API {self.host}: {what}: HTTP {status} with a body that is not "
                                     "JSON (is this really a Kubernetes API server?)", status, "BadResponse") from None

    def _send(self, method: str, path: str, headers: dict[str, str], body: t.Any,
              query: list[tuple[str, str]]) -> tuple[int, bytes]:
        api = self.api_client
        timeout = (self.timeout, self.timeout)
        if hasattr(api, "param_serialize"):  # kubernetes >= 35 (pydantic generator)
            serialized = api.param_serialize(method=method, resource_path=path, query_params=query,
                                             header_params=headers, body=body, auth_settings=["BearerToken"])
            response = api.call_api(*serialized, _request_timeout=timeout)
            return int(response.status), response.read()     # read() stores the body in .data and returns it
        # kubernetes < 35: call_api takes keywords. The installed version's types do not describe it.
        legacy: t.Any = api
        response = legacy.call_api(path, method, query_params=query, header_params=headers, body=body,
                                   auth_settings=["BearerToken"], _preload_content=False,
                                   _request_timeout=timeout, _return_http_data_only=True)
        return int(response.status), response.data

    def get(self, path: str, query: t.Sequence[tuple[str, str]] = ()) -> t.Any:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str) -> t.Any:
        try:
            return self.get(path)
        except KubernetesApiError as exc:
            if exc.status == 404:
                return None
            raise

    def put(self, path: str, body: t.Any) -> t.Any:
        return self.request("PUT", path, body=body)

    # -- objects the collection needs --------------------------------------------------
    def get_node(self, name: str) -> dict[str, t.Any] | None:
        return self.get_or_none(f"/api/v1/nodes/{_quote(name)}")

    def list_nodes(self, label_selector: str | None = None) -> list[dict[str, t.Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        return list(self.get("/api/v1/nodes", query).get("items") or [])

    def list_csrs(self) -> list[dict[str, t.Any]]:
        return list(self.get(CSR_PATH).get("items") or [])

    def get_csr(self, name: str) -> dict[str, t.Any] | None:
        return self.get_or_none(f"{CSR_PATH}/{_quote(name)}")

    def put_csr_approval(self, csr: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """Writes the CSR's conditions through the approval subresource (approve or deny)."""
        return self.put(f"{CSR_PATH}/{_quote(csr['metadata']['name'])}/approval", dict(csr))


CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def _quote(name: str) -> str:
    return urllib.parse.quote(str(name), safe="")


def _api_error(host: str, what: str, status: int, data: t.Any) -> KubernetesApiError:
    """The API's own Status reason and message, in one line."""
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data or "")
    reason, message = "", ""
    try:
        body = json.loads(text)
        if isinstance(body, dict):
            reason, message = str(body.get("reason") or ""), str(body.get("message") or "")
    except ValueError:
        message = text
    reason = reason or _HTTP_REASONS.get(status, "Error")
    detail = one_line(message) or "(no message)"
    return KubernetesApiError(f"Kubernetes API {host}: {what}: {status} {reason}: {detail}", status, reason)


_HTTP_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                 409: "Conflict", 410: "Gone", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
                 503: "ServiceUnavailable", 504: "Timeout"}


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error urllib3 wraps (refused, timed out, certificate verify failed)."""
    seen = exc
    for _depth in range(10):
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException) or inner is seen:
            # ProtocolError and friends carry the cause among their args: ('Connection aborted.', cause)
            inner = next((arg for arg in seen.args if isinstance(arg, BaseException)), None)
        if inner is None or inner is seen:
            break
        seen = inner
    return seen


def _cause_text(seen: BaseException) -> str:
    text = one_line(seen)
    # urllib3 prefixes the connection object's repr; the operator needs what follows it.
    marker = "): "
    if text.startswith(("<", "HTTPSConnection(", "HTTPConnection(")) and marker in text:
        text = text.split(marker, 1)[1]
    return text or type(seen).__name__
