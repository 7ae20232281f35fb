"""The columns kube-apiserver prints for workloads: Pods, Services, Deployments, StatefulSets,
DaemonSets, Jobs, CronJobs and Ingresses (compared with a kube-apiserver built from source).

Why: ``kubectl get pods`` on a cluster prints READY, STATUS, RESTARTS; an emulator that printed
NAME and AGE would show a person something no cluster shows. The emulator runs no controllers, so
the status-derived cells read as they do on a cluster before any controller acted (``0/1``,
``Pending``); a Service has no allocated ``clusterIP`` here, so its Cluster-IP reads ``<none>``.
"""

from __future__ import annotations

from typing import Any

from sealed_gitops.testing.kube.cells import Cell, age, col, get

__all__ = ["WORKLOAD_COLUMNS", "WORKLOAD_WIDE"]


def _none(text: str) -> str:
    return text or "<none>"


def _pod_template(o: dict[str, Any]) -> dict[str, Any]:
    if o.get("kind") == "Pod":
        return o
    if o.get("kind") == "CronJob":
        return get(o, "spec", "jobTemplate", "spec", "template") or {}
    return get(o, "spec", "template") or {}


def _images(key: str) -> Cell:
    def cell(o: dict[str, Any]) -> str:
        containers = get(_pod_template(o), "spec", "containers") or []
        return ",".join(str(c.get(key, "")) for c in containers)

    return cell


def _labels_text(labels: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def _service_ports(o: dict[str, Any]) -> str:
    ports = []
    for port in get(o, "spec", "ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol') or 'TCP'}")
    return _none(",".join(ports))


def _pod_ready(o: dict[str, Any]) -> str:
    total = len(get(o, "spec", "containers") or [])
    ready = sum(1 for c in get(o, "status", "containerStatuses") or [] if c.get("ready"))
    return f"{ready}/{total}"


def _job_status(o: dict[str, Any]) -> str:
    for condition in get(o, "status", "conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in (
            "Complete",
            "Failed",
            "Suspended",
            "FailureTarget",
            "SuccessCriteriaMet",
        ):
            return {"Complete": "Complete", "Suspended": "Suspended"}.get(
                condition["type"],
                "Failed" if condition["type"] != "SuccessCriteriaMet" else "Complete",
            )
    return "Running"


def _ingress_hosts(o: dict[str, Any]) -> str:
    hosts = [r.get("host") for r in get(o, "spec", "rules") or [] if r.get("host")]
    return ",".join(hosts) or "*"


def _ingress_address(o: dict[str, Any]) -> str:
    entries = get(o, "status", "loadBalancer", "ingress") or []
    return ",".join(str(e.get("ip") or e.get("hostname") or "") for e in entries)


_WORKLOAD_WIDE = [
    (col("Containers", priority=1), _images("name")),
    (col("Images", priority=1), _images("image")),
]
_SELECTOR_WIDE = (
    col("Selector", priority=1),
    lambda o: _none(_labels_text(get(o, "spec", "selector", "matchLabels"))),
)


def _containers(o: dict[str, Any], key: str) -> str:
    containers = get(o, "spec", "template", "spec", "containers") or []
    return ",".join(str(c.get(key, "")) for c in containers)


def _selector(o: dict[str, Any]) -> str:
    labels = get(o, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


#: (group, plural) -> the columns between Name and Age
WORKLOAD_COLUMNS: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "pods"): [
        (col("Ready"), _pod_ready),
        (
            col("Status"),
            lambda o: get(o, "status", "reason") or get(o, "status", "phase") or "Pending",
        ),
        (
            col("Restarts"),
            lambda o: str(
                sum(
                    int(c.get("restartCount") or 0)
                    for c in get(o, "status", "containerStatuses") or []
                )
            ),
        ),
    ],
    ("", "services"): [
        (col("Type"), lambda o: get(o, "spec", "type") or "ClusterIP"),
        (col("Cluster-IP"), lambda o: _none(get(o, "spec", "clusterIP") or "")),
        (col("External-IP"), lambda o: _none(",".join(get(o, "spec", "externalIPs") or []))),
        (col("Port(s)"), _service_ports),
    ],
    ("apps", "statefulsets"): [
        (
            col("Ready"),
            lambda o: (
                f"{get(o, 'status', 'readyReplicas') or 0}/"
                f"{get(o, 'spec', 'replicas') if get(o, 'spec', 'replicas') is not None else 1}"
            ),
        )
    ],
    ("apps", "daemonsets"): [
        *(
            (col(title, "integer"), lambda o, f=field: int(get(o, "status", f) or 0))
            for title, field in (
                ("Desired", "desiredNumberScheduled"),
                ("Current", "currentNumberScheduled"),
                ("Ready", "numberReady"),
                ("Up-to-date", "updatedNumberScheduled"),
                ("Available", "numberAvailable"),
            )
        ),
        (
            col("Node Selector"),
            lambda o: _none(_labels_text(get(o, "spec", "template", "spec", "nodeSelector"))),
        ),
    ],
    ("batch", "jobs"): [
        (col("Status"), _job_status),
        (
            col("Completions"),
            lambda o: f"{get(o, 'status', 'succeeded') or 0}/{get(o, 'spec', 'completions') or 1}",
        ),
        (col("Duration"), lambda o: ""),
    ],
    ("batch", "cronjobs"): [
        (col("Schedule"), lambda o: get(o, "spec", "schedule") or ""),
        (col("Timezone"), lambda o: _none(get(o, "spec", "timeZone") or "")),
        (col("Suspend", "boolean"), lambda o: "True" if get(o, "spec", "suspend") else "False"),
        (col("Active", "integer"), lambda o: len(get(o, "status", "active") or [])),
        (
            col("Last Schedule"),
            lambda o: (
                age(get(o, "status", "lastScheduleTime"))
                if get(o, "status", "lastScheduleTime")
                else "<none>"
            ),
        ),
    ],
    ("networking.k8s.io", "ingresses"): [
        (col("Class"), lambda o: _none(get(o, "spec", "ingressClassName") or "")),
        (col("Hosts"), _ingress_hosts),
        (col("Address"), _ingress_address),
        (col("Ports"), lambda o: "80, 443" if get(o, "spec", "tls") else "80"),
    ],
    ("apps", "deployments"): [
        (
            col("Ready"),
            lambda o: (
                f"{get(o, 'status', 'readyReplicas') or 0}/"
                f"{get(o, 'spec', 'replicas') if get(o, 'spec', 'replicas') is not None else 1}"
            ),
        ),
        (col("Up-to-date"), lambda o: get(o, "status", "updatedReplicas") or 0),
        (col("Available"), lambda o: get(o, "status", "availableReplicas") or 0),
    ],
}
#: (group, plural) -> the columns after Age (priority 1: ``-o wide``)
WORKLOAD_WIDE: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "pods"): [
        (col("IP", priority=1), lambda o: _none(get(o, "status", "podIP") or "")),
        (col("Node", priority=1), lambda o: _none(get(o, "spec", "nodeName") or "")),
        (
            col("Nominated Node", priority=1),
            lambda o: _none(get(o, "status", "nominatedNodeName") or ""),
        ),
        (
            col("Readiness Gates", priority=1),
            lambda o: (
                f"0/{len(get(o, 'spec', 'readinessGates'))}"
                if get(o, "spec", "readinessGates")
                else "<none>"
            ),
        ),
    ],
    ("", "services"): [
        (col("Selector", priority=1), lambda o: _none(_labels_text(get(o, "spec", "selector"))))
    ],
    ("apps", "statefulsets"): _WORKLOAD_WIDE,
    ("apps", "daemonsets"): [*_WORKLOAD_WIDE, _SELECTOR_WIDE],
    ("batch", "jobs"): [*_WORKLOAD_WIDE, _SELECTOR_WIDE],
    ("batch", "cronjobs"): [
        *_WORKLOAD_WIDE,
        (
            col("Selector", priority=1),
            lambda o: _none(
                _labels_text(get(o, "spec", "jobTemplate", "spec", "selector", "matchLabels"))
            ),
        ),
    ],
    ("apps", "deployments"): [
        (col("Containers", priority=1), lambda o: _containers(o, "name")),
        (col("Images", priority=1), lambda o: _containers(o, "image")),
        (col("Selector", priority=1), _selector),
    ],
}
