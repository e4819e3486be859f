# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Node as the API server sees it around a kubelet restart: Ready, cordon, drain.

Runs where the Kubernetes client is installed (the controller). Requests go through the
shared client in ``_k8s_client`` (kubernetes.core-style auth, one-line API errors).

"Ready" after a restart means more than ``Ready=True``: the node lifecycle controller
keeps an old Ready condition for its grace period (40 s) after a kubelet dies, so a Node
that was Ready before the restart still looks Ready while its kubelet is down. A restart
only counts as Ready when the restarted kubelet has posted its status: the Ready condition
carries a heartbeat stamped after the restart began, by the kubelet's own clock (the node's
clock: the one that stamps it). Heartbeats carry whole seconds and a real kubelet posts its
first status within a second of starting, so a heartbeat in the restart's own second counts
when the Node's lease (renewed by the kubelet, in microseconds) shows the new kubelet too.
"""
from __future__ import annotations

import datetime
import json
import time
import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.k8s import client as k8s
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import (
    DrainRefused,
    KubecertsError,
    KubernetesApiError,
    KubernetesUnreachable,
)
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import format_rfc3339, one_line, parse_rfc3339

MERGE_PATCH = "application/merge-patch+json"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def parse_time(value: t.Any) -> float | None:
    """Epoch seconds of an RFC 3339 time as the API writes it (``2026-11-21T10:00:00Z``)."""
    moment = parse_rfc3339(value)
    return moment.timestamp() if moment is not None else None


def condition(node: t.Mapping[str, t.Any] | None, kind: str) -> dict[str, t.Any] | None:
    for cond in ((node or {}).get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


class Readiness(t.NamedTuple):
    ready: bool
    detail: str
    last_heartbeat: str | None
    last_transition: str | None = None


LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"


def lease_renewed(lease: t.Mapping[str, t.Any] | None) -> float | None:
    """When the kubelet last renewed its Node lease (epoch, microseconds), if known."""
    return parse_time(((lease or {}).get("spec") or {}).get("renewTime"))


def readiness(node: t.Mapping[str, t.Any] | None, name: str, since: float | None = None,
              lease: t.Mapping[str, t.Any] | None = None) -> Readiness:
    """Is ``node`` Ready, with a heartbeat from after ``since`` (epoch, node clock)?

    Heartbeats carry whole seconds. A heartbeat stamped in the same second as ``since``
    may come from the kubelet that was being stopped, so it counts only when ``lease``
    was renewed after ``since``: then the restarted kubelet is the one that stamped it.
    """
    if node is None:
        return Readiness(False, f"Node {name} is not registered in the API", None)
    ready = condition(node, "Ready")
    if ready is None:
        return Readiness(False, f"Node {name} has no Ready condition yet", None)
    beat = ready.get("lastHeartbeatTime")
    moved = ready.get("lastTransitionTime")
    status = ready.get("status")
    if status != "True":
        why = ": ".join(x for x in (ready.get("reason"), ready.get("message")) if x)
        return Readiness(False, f"Node {name} is Ready={status}" + (f" ({why})" if why else ""), beat, moved)
    if since is not None:
        beat_epoch = parse_time(beat)
        if beat_epoch is None:
            return Readiness(False, f"Node {name} is Ready but its heartbeat time {beat!r} does not parse", beat,
                             moved)
        renewed = lease_renewed(lease)
        same_second_confirmed = int(beat_epoch) == int(since) and renewed is not None and renewed > since
        if int(beat_epoch) <= int(since) and not same_second_confirmed:
            stamp = format_rfc3339(datetime.datetime.fromtimestamp(int(since), datetime.timezone.utc))
            return Readiness(False, f"Node {name} is Ready only by its last heartbeat {beat}, from before the "
                                    f"restart at {stamp}: the restarted kubelet has not reported yet", beat, moved)
    return Readiness(True, f"Node {name} is Ready (heartbeat {beat})", beat, moved)


class NodeApi(k8s.KubeClient):
    """The shared client plus the Node and Pod verbs a restart needs."""

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> NodeApi:
        return cls(k8s.build_configuration(params),
                   int(params.get("request_timeout") or k8s.DEFAULT_REQUEST_TIMEOUT))

    def patch(self, path: str, body: t.Any, content_type: str = MERGE_PATCH) -> t.Any:
        """A PATCH with a patch media type (the shared ``request`` sends plain JSON only)."""
        what = f"PATCH {path}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        data: bytes | str | None       # bytes from the wire, str or None from an ApiException
        try:
            status, data = self._send("PATCH", path, headers, body, [])
        except k8s.ApiException as exc:
            status, data = int(exc.status or 0), exc.body
            if not status:
                raise KubernetesUnreachable(f"Kubernetes API {self.host}: {what}: {one_line(exc.reason)}") \
                    from None
        except k8s.urllib3.exceptions.HTTPError as exc:
            raise KubernetesUnreachable(f"Kubernetes API {self.host} unreachable: {what}: "
                                        f"{k8s._root_cause(exc)}") from None
        except OSError as exc:
            raise KubernetesUnreachable(f"Kubernetes API {self.host} unreachable: {what}: "
                                        f"{one_line(exc)}") from None
        if not 200 <= status <= 299:
            raise k8s._api_error(self.host, what, status, data)
        try:
            return json.loads(data) if data else {}
        except ValueError:
            raise KubernetesApiError(f"Kubernetes API {self.host}: {what}: HTTP {status} with a body that is "
                                     "not JSON", status, "BadResponse") from None

    def set_unschedulable(self, name: str, value: bool) -> dict[str, t.Any]:
        # null removes the field, as `kubectl uncordon` leaves it.
        return self.patch(f"/api/v1/nodes/{k8s._quote(name)}", {"spec": {"unschedulable": True if value else None}})

    def pods_on(self, name: str) -> list[dict[str, t.Any]]:
        found = self.get("/api/v1/pods", [("fieldSelector", f"spec.nodeName={name}")])
        return list(found.get("items") or [])

    def evict(self, pod: t.Mapping[str, t.Any], grace_period: int | None) -> None:
        meta = pod["metadata"]
        body: dict[str, t.Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                  "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
        if grace_period is not None and grace_period >= 0:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_period}
        self.request("POST", f"/api/v1/namespaces/{k8s._quote(meta['namespace'])}/pods/"
                             f"{k8s._quote(meta['name'])}/eviction", body=body)

    def pod_gone(self, pod: t.Mapping[str, t.Any]) -> bool:
        meta = pod["metadata"]
        now = self.get_or_none(f"/api/v1/namespaces/{k8s._quote(meta['namespace'])}/pods/{k8s._quote(meta['name'])}")
        return now is None or (now.get("metadata") or {}).get("uid") != meta.get("uid")


def pod_label(pod: t.Mapping[str, t.Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


class DrainPlan(t.NamedTuple):
    evict: list[dict[str, t.Any]]
    skipped: list[dict[str, str]]      # pod, reason


def plan_drain(pods: t.Iterable[t.Mapping[str, t.Any]], ignore_daemonsets: bool = True,
               delete_emptydir_data: bool = False, force: bool = False) -> DrainPlan:
    """Which pods a drain evicts, with kubectl's refusals: DaemonSet pods (unless ignored),
    pods with emptyDir data, and pods no controller would recreate (unless forced)."""
    evict: list[dict[str, t.Any]] = []
    skipped: list[dict[str, str]] = []
    refusals: list[str] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        label = pod_label(pod)
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            skipped.append({"pod": label, "reason": "static (mirror) pod: the kubelet runs it, eviction cannot move it"})
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            evict.append(dict(pod))
            continue
        owners = meta.get("ownerReferences") or []
        controller = next((o for o in owners if o.get("controller")), None)
        if controller and controller.get("kind") == "DaemonSet":
            if ignore_daemonsets:
                skipped.append({"pod": label, "reason": "DaemonSet pod: its controller ignores cordons"})
                continue
            refusals.append(f"{label} (DaemonSet-managed; set ignore_daemonsets)")
            continue
        if controller is None and not force:
            refusals.append(f"{label} (no controller would recreate it; set force)")
            continue
        volumes = (pod.get("spec") or {}).get("volumes") or []
        if any("emptyDir" in (v or {}) for v in volumes) and not delete_emptydir_data:
            refusals.append(f"{label} (emptyDir data would be lost; set delete_emptydir_data)")
            continue
        evict.append(dict(pod))
    if refusals:
        raise DrainRefused(f"drain refused for {len(refusals)} pod(s): {', '.join(refusals[:10])}"
                           + (" ..." if len(refusals) > 10 else ""))
    return DrainPlan(evict, skipped)


def drain(api: NodeApi, plan: DrainPlan, grace_period: int | None, deadline: float, interval: float,
          clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep) -> list[str]:
    """Evicts the planned pods (retrying while a PodDisruptionBudget says 429) and waits for
    them to be gone. Raises KubecertsError naming the pods still there at the deadline."""
    pending = list(plan.evict)
    blocked: dict[str, str] = {}
    while pending:
        still: list[dict[str, t.Any]] = []
        for pod in pending:
            try:
                api.evict(pod, grace_period)
            except KubernetesApiError as exc:
                if exc.status == 404:
                    continue            # already gone
                if exc.status == 429:   # a PodDisruptionBudget forbids it for now
                    blocked[pod_label(pod)] = str(exc)
                    still.append(pod)
                    continue
                raise
        pending = still
        if pending:
            if clock() + interval > deadline:
                raise KubecertsError(f"drain timed out: {len(pending)} pod(s) could not be evicted: "
                                     + "; ".join(blocked.get(pod_label(p), pod_label(p)) for p in pending[:5]))
            sleep(interval)
    waiting = list(plan.evict)
    while True:
        waiting = [pod for pod in waiting if not api.pod_gone(pod)]
        if not waiting:
            break
        if clock() + interval > deadline:
            raise KubecertsError(f"drain timed out: {len(waiting)} evicted pod(s) still terminating: "
                                 + ", ".join(pod_label(p) for p in waiting[:10]))
        sleep(interval)
    return [pod_label(p) for p in plan.evict]


def wait_ready(api: k8s.KubeClient, name: str, since: float | None, deadline: float, interval: float,
               clock: t.Callable[[], float] = time.monotonic,
               sleep: t.Callable[[float], None] = time.sleep) -> tuple[Readiness, dict[str, t.Any] | None, float]:
    """Polls the Node until it is Ready (since ``since``) or ``deadline`` passes.
    API errors other than "not found" propagate: a 403 is not a NotReady node."""
    start = clock()
    while True:
        node = api.get_node(name)
        state = readiness(node, name, since, get_lease(api, name) if since is not None else None)
        if state.ready or clock() + interval > deadline:
            return state, node, round(clock() - start, 3)
        sleep(interval)


def get_lease(api: k8s.KubeClient, name: str) -> dict[str, t.Any] | None:
    """The Node's lease in kube-node-lease, or None where there is none (or no right to read it)."""
    try:
        return t.cast("dict[str, t.Any] | None", api.get_or_none(LEASE_PATH + name))
    except KubernetesApiError:
        return None


def _since(value: t.Any) -> float | None:
    """``ready_since`` as epoch seconds: a number, or an RFC 3339 / ISO 8601 time."""
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    parsed = parse_time(str(value))
    if parsed is None:
        raise KubecertsError(f"ready_since: {value!r} is neither epoch seconds nor an RFC 3339 time")
    return parsed


def run_node_status(params: t.Mapping[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """The module's work: bring the Node to ``state`` and report how it looks."""
    name = params["name"]
    state = params.get("state") or "ready"
    since = _since(params.get("ready_since"))
    interval = max(0.2, float(params.get("poll_interval") or 2))
    deadline = time.monotonic() + max(0, int(params.get("wait_timeout") or 0))
    result: dict[str, t.Any] = {"changed": False, "name": name, "evicted": [], "skipped_pods": []}
    with NodeApi.from_params(params) as api:
        node = api.get_node(name)
        if node is None and state != "ready":
            raise KubecertsError(f"Node {name} does not exist in the API {api.host}")
        was = bool(((node or {}).get("spec") or {}).get("unschedulable"))
        result["was_unschedulable"] = was
        if state in ("cordoned", "drained") and not was:
            result["changed"] = True
            if not check_mode:
                node = api.set_unschedulable(name, True)
        elif state == "uncordoned" and was:
            result["changed"] = True
            if not check_mode:
                node = api.set_unschedulable(name, False)
        if state == "drained":
            plan = plan_drain(api.pods_on(name), bool(params.get("ignore_daemonsets", True)),
                              bool(params.get("delete_emptydir_data")), bool(params.get("force")))
            result["skipped_pods"] = plan.skipped
            result["evicted"] = [pod_label(p) for p in plan.evict]
            if plan.evict:
                result["changed"] = True
                if not check_mode:
                    grace = params.get("grace_period")
                    drain(api, plan, grace if grace is not None and grace >= 0 else None, deadline, interval)
        waited = 0.0
        if state == "ready":
            ready, node, waited = wait_ready(api, name, since, deadline, interval)
        else:
            ready = readiness(node, name, since)
    unschedulable = bool(((node or {}).get("spec") or {}).get("unschedulable"))
    if check_mode and state in ("cordoned", "drained"):
        unschedulable = True
    elif check_mode and state == "uncordoned":
        unschedulable = False
    result.update(exists=node is not None, ready=ready.ready, ready_detail=ready.detail,
                  last_heartbeat=ready.last_heartbeat, last_transition=ready.last_transition,
                  unschedulable=unschedulable, waited_seconds=waited)
    if state == "ready" and not ready.ready:
        raise KubecertsError(f"{ready.detail} (waited {waited:g} s)", **result)
    return result
