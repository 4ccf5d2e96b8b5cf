"""Project rules for a rendered Kustomize build, on top of the schema validation.

Usage: python check_manifests.py RENDER.yaml [LABEL]   (run by deploy/validate.sh with the venv's Python,
which has PyYAML as a dependency of kubernetes-validate). Exits 1 and lists every violation, or
prints the Secrets and keys the render expects to find in the cluster.

Rules, for every Deployment:
- each container drops ALL capabilities, forbids privilege escalation, has a read-only root
  filesystem, runs as non-root with the RuntimeDefault seccomp profile (pod or container level);
- each container has requests and limits for cpu and memory, and start-up, readiness and
  liveness probes;
- terminationGracePeriodSeconds exceeds the preStop sleep plus JAMAA__SERVER__DRAIN_TIMEOUT_SECONDS,
  and there is a preStop hook;
- every ConfigMap it references is in the render;
- it rolls out with maxUnavailable 0 and a surge of at least 1;
- it runs under its own ServiceAccount from the render, which mounts no token (nor does the pod);
- exactly one HorizontalPodAutoscaler (autoscaling/v2, on CPU, 1 <= min <= max) scales it, so
  it leaves spec.replicas unset (re-applying must not undo the autoscaler);
- a PodDisruptionBudget selects its pods and still lets one go at the autoscaler's minimum;
- its namespace has a default-deny NetworkPolicy (ingress and egress), some policy selects its
  pods for egress, and the ports its Services send to are admitted by a policy selecting its pods.
And: no Secret is in the render (they are created out of band); every namespaced object names a
namespace that the render creates; every Service selects a Deployment's pods on a port that the
pod names; every autoscaler and disruption budget has its Deployment.
Operator objects, when present: CloudNativePG Databases, DatabaseRoles and ScheduledBackups name a
Cluster of the render; each Database's owner is a role declared in the render; every service
with a database URL has its Database (service-request -> service_request); a Cluster's
barman-cloud plugin names an ObjectStore of the render, and a plugin ScheduledBackup needs that
plugin; a RabbitmqCluster has an odd number of nodes; a ServiceMonitor selects Services that name
its endpoint ports; an HTTPRoute's backends are Services of the render on ports they expose.
"""

from __future__ import annotations

import sys

import yaml

DEFAULT_DRAIN_SECONDS = 20


def main(path: str, label: str) -> int:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    errors: list[str] = []
    configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    secrets_needed: dict[str, set[str]] = {}

    for d in docs:
        if d["kind"] == "Secret":
            errors.append(f"secret/{d['metadata']['name']}: Secrets must not be in the repository")

    for dep in deployments:
        name = f"deployment/{dep['metadata']['name']}"
        pod = dep["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext") or {}
        for c in pod.get("containers", []):
            where = f"{name} container {c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("allowPrivilegeEscalation") is not False:
                errors.append(f"{where}: allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                errors.append(f"{where}: readOnlyRootFilesystem must be true")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                errors.append(f"{where}: capabilities must drop ALL")
            if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
                errors.append(f"{where}: runAsNonRoot must be true")
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                errors.append(f"{where}: seccompProfile must be RuntimeDefault")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        errors.append(f"{where}: resources.{kind}.{r} missing")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in c:
                    errors.append(f"{where}: {probe} missing")

            env: dict[str, str] = {}
            for src in c.get("envFrom") or []:
                ref = (src.get("configMapRef") or {}).get("name")
                if ref is not None:
                    if ref not in configmaps:
                        errors.append(f"{where}: envFrom ConfigMap {ref} is not in the render")
                    env.update(configmaps.get(ref, {}))
            for e in c.get("env") or []:
                source = e.get("valueFrom") or {}
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    secrets_needed.setdefault(f"{namespace(dep)}/{ref['name']}", set()).add(ref["key"])
                elif "configMapKeyRef" in source and source["configMapKeyRef"]["name"] not in configmaps:
                    errors.append(f"{where}: ConfigMap {source['configMapKeyRef']['name']} is not in the render")
                elif "value" in e:
                    env[e["name"]] = e["value"]

            drain = int(env.get("JAMAA__SERVER__DRAIN_TIMEOUT_SECONDS", DEFAULT_DRAIN_SECONDS))
            sleep = 0
            pre_stop = ((c.get("lifecycle") or {}).get("preStop") or {})
            command = (pre_stop.get("exec") or {}).get("command") or []
            if len(command) == 2 and command[0].endswith("/sleep"):
                sleep = int(command[1])
            elif "sleep" in pre_stop:
                sleep = int(pre_stop["sleep"]["seconds"])
            if not pre_stop:
                errors.append(f"{where}: lifecycle.preStop missing (the pod must leave the endpoints before SIGTERM)")
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if grace <= drain + sleep:
                errors.append(
                    f"{where}: terminationGracePeriodSeconds {grace} must exceed "
                    f"preStop {sleep}s + drain {drain}s"
                )

    for svc in (d for d in docs if d["kind"] == "Service"):
        name = f"service/{svc['metadata']['name']}"
        selector = svc["spec"].get("selector") or {}
        matched = [
            dep for dep in deployments
            if namespace(dep) == namespace(svc) and selector and all(
                (dep["spec"]["template"]["metadata"].get("labels") or {}).get(k) == v
                for k, v in selector.items()
            )
        ]
        if not matched:
            errors.append(f"{name}: its selector matches no Deployment's pods")
            continue
        port_names = {
            p.get("name")
            for dep in matched
            for c in dep["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports") or []
        }
        for p in svc["spec"].get("ports") or []:
            target = p.get("targetPort")
            if isinstance(target, str) and target not in port_names:
                errors.append(f"{name}: targetPort {target} is not a named container port")

    errors.extend(platform_rules(docs, deployments))
    errors.extend(operator_rules(docs, deployments, secrets_needed))

    if errors:
        for e in errors:
            print(f"ERROR {label}: {e}")
        return 1
    needed = ", ".join(f"{s} ({', '.join(sorted(k))})" for s, k in sorted(secrets_needed.items()))
    print(f"OK {label}: project rules hold for {len(deployments)} Deployments and {len(docs)} objects; "
          f"Secrets to create: {needed or 'none'}")
    return 0


def namespace(doc: dict) -> str | None:
    return (doc.get("metadata") or {}).get("namespace")


def pod_labels(dep: dict) -> dict:
    return dep["spec"]["template"]["metadata"].get("labels") or {}


def selects(selector: dict | None, labels: dict) -> bool:
    """A metav1.LabelSelector against a label set ({} selects everything; None selects nothing)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def of_kind(docs: list[dict], kind: str, api_group: str | None = None) -> list[dict]:
    return [
        d for d in docs
        if d["kind"] == kind and (api_group is None or d["apiVersion"].rpartition("/")[0] == api_group)
    ]


CLUSTER_SCOPED = {"Namespace"}


def platform_rules(docs: list[dict], deployments: list[dict]) -> list[str]:
    """Namespaces, rollout strategy, ServiceAccounts, autoscalers, disruption budgets, policies."""
    errors: list[str] = []
    namespaces = {d["metadata"]["name"] for d in of_kind(docs, "Namespace")}
    for d in docs:
        if d["kind"] in CLUSTER_SCOPED:
            continue
        ns = namespace(d)
        if ns is None:
            errors.append(f"{d['kind']}/{d['metadata']['name']}: no metadata.namespace")
        elif ns not in namespaces:
            errors.append(f"{d['kind']}/{d['metadata']['name']}: namespace {ns} is not created by the render")

    service_accounts = {(namespace(d), d["metadata"]["name"]): d for d in of_kind(docs, "ServiceAccount")}
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    pdbs = of_kind(docs, "PodDisruptionBudget")
    policies = of_kind(docs, "NetworkPolicy")
    services = of_kind(docs, "Service")

    for dep in deployments:
        name = f"deployment/{dep['metadata']['name']}"
        ns = namespace(dep)
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        labels = pod_labels(dep)

        strategy = spec.get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate" or rolling.get("maxUnavailable") not in (0, "0%"):
            errors.append(f"{name}: must roll out with strategy RollingUpdate and maxUnavailable 0")
        if rolling.get("maxSurge") in (None, 0, "0%"):
            errors.append(f"{name}: rollingUpdate.maxSurge must be at least 1")

        sa_name = pod.get("serviceAccountName")
        sa = service_accounts.get((ns, sa_name))
        if sa is None:
            errors.append(f"{name}: serviceAccountName {sa_name!r} is not a ServiceAccount of the render")
        elif sa.get("automountServiceAccountToken") is not False:
            errors.append(f"serviceaccount/{sa_name}: automountServiceAccountToken must be false")
        if pod.get("automountServiceAccountToken") is not False:
            errors.append(f"{name}: the pod must set automountServiceAccountToken: false")

        mine = [
            h for h in hpas
            if namespace(h) == ns and h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"].get("name") == dep["metadata"]["name"]
        ]
        if len(mine) != 1:
            errors.append(f"{name}: needs exactly one HorizontalPodAutoscaler, has {len(mine)}")
            min_replicas = 1
        else:
            hpa = mine[0]
            where = f"horizontalpodautoscaler/{hpa['metadata']['name']}"
            if hpa["apiVersion"] != "autoscaling/v2":
                errors.append(f"{where}: use autoscaling/v2")
            min_replicas = hpa["spec"].get("minReplicas", 1)
            if not 1 <= min_replicas <= hpa["spec"]["maxReplicas"]:
                errors.append(f"{where}: needs 1 <= minReplicas ({min_replicas}) <= maxReplicas")
            if not any(
                m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
                for m in hpa["spec"].get("metrics") or []
            ):
                errors.append(f"{where}: has no CPU resource metric")
            if "replicas" in spec:
                errors.append(f"{name}: spec.replicas is set although {where} owns the replica count")

        budgets = [p for p in pdbs if namespace(p) == ns and selects(p["spec"].get("selector"), labels)]
        if not budgets:
            errors.append(f"{name}: no PodDisruptionBudget selects its pods")
        for pdb in budgets:
            where = f"poddisruptionbudget/{pdb['metadata']['name']}"
            min_available = pdb["spec"].get("minAvailable")
            max_unavailable = pdb["spec"].get("maxUnavailable")
            if isinstance(min_available, int) and min_available >= min_replicas:
                errors.append(f"{where}: minAvailable {min_available} blocks every eviction at {min_replicas} replicas")
            if max_unavailable in (0, "0%"):
                errors.append(f"{where}: maxUnavailable 0 blocks every eviction")

        in_ns = [p for p in policies if namespace(p) == ns]
        if not any(
            p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes") or []) >= {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")
            for p in in_ns
        ):
            errors.append(f"{name}: namespace {ns} has no default-deny NetworkPolicy (ingress and egress)")
        selecting = [p for p in in_ns if selects(p["spec"].get("podSelector"), labels)]
        if not any("Egress" in (p["spec"].get("policyTypes") or []) and p["spec"].get("egress") for p in selecting):
            errors.append(f"{name}: no NetworkPolicy allows any egress for its pods")
        container_ports = {
            (port.get("name"), port["containerPort"])
            for c in pod["containers"] for port in c.get("ports") or []
        }
        for svc in services:
            selector = svc["spec"].get("selector")  # a plain label map, not a LabelSelector
            if namespace(svc) != ns or not selector or not selects({"matchLabels": selector}, labels):
                continue
            for sp in svc["spec"].get("ports") or []:
                target = sp.get("targetPort", sp["port"])
                number = next((n for (pn, n) in container_ports if pn == target), target)
                if not isinstance(number, int):
                    continue
                admitted = any(
                    not rule.get("ports") or any(rp.get("port") in (number, target) for rp in rule["ports"])
                    for p in selecting if "Ingress" in (p["spec"].get("policyTypes") or [])
                    for rule in p["spec"].get("ingress") or []
                )
                if not admitted:
                    errors.append(
                        f"{name}: no NetworkPolicy admits port {number} that service/{svc['metadata']['name']} sends to"
                    )

    dep_names = {(namespace(d), d["metadata"]["name"]) for d in deployments}
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or (namespace(hpa), ref.get("name")) not in dep_names:
            errors.append(f"horizontalpodautoscaler/{hpa['metadata']['name']}: targets no Deployment of the render")
    for pdb in pdbs:
        if not any(namespace(d) == namespace(pdb) and selects(pdb["spec"].get("selector"), pod_labels(d))
                   for d in deployments):
            errors.append(f"poddisruptionbudget/{pdb['metadata']['name']}: selects no Deployment's pods")
    return errors


def operator_rules(docs: list[dict], deployments: list[dict], secrets_needed: dict[str, set[str]]) -> list[str]:
    """Cross-object references of the operator kinds; adds the Secrets they expect."""
    errors: list[str] = []
    cnpg = "postgresql.cnpg.io"
    clusters = {(namespace(c), c["metadata"]["name"]): c for c in of_kind(docs, "Cluster", cnpg)}
    roles: dict[tuple, set[str]] = {}
    for key, cluster in clusters.items():
        roles[key] = {r["name"] for r in ((cluster["spec"].get("managed") or {}).get("roles") or [])}
        for plugin in cluster["spec"].get("plugins") or []:
            if plugin["name"] == "barman-cloud.cloudnative-pg.io" and plugin.get("enabled", True):
                store = (plugin.get("parameters") or {}).get("barmanObjectName")
                if not any(namespace(o) == key[0] and o["metadata"]["name"] == store
                           for o in of_kind(docs, "ObjectStore", "barmancloud.cnpg.io")):
                    errors.append(f"cluster/{key[1]}: barman-cloud plugin names ObjectStore {store!r}, not in the render")
    for role in of_kind(docs, "DatabaseRole", cnpg):
        key = (namespace(role), role["spec"]["cluster"]["name"])
        if key not in clusters:
            errors.append(f"databaserole/{role['metadata']['name']}: cluster {key[1]} is not in the render")
            continue
        roles[key].add(role["spec"]["name"])
        secret = (role["spec"].get("passwordSecret") or {}).get("name")
        if secret:
            secrets_needed.setdefault(f"{key[0]}/{secret}", set()).update({"username", "password"})
    databases = set()
    for db in of_kind(docs, "Database", cnpg):
        key = (namespace(db), db["spec"]["cluster"]["name"])
        databases.add(db["spec"]["name"])
        if key not in clusters:
            errors.append(f"database/{db['metadata']['name']}: cluster {key[1]} is not in the render")
        elif db["spec"]["owner"] not in roles[key]:
            errors.append(f"database/{db['metadata']['name']}: owner {db['spec']['owner']} is no declared role")
    for backup in of_kind(docs, "ScheduledBackup", cnpg):
        key = (namespace(backup), backup["spec"]["cluster"]["name"])
        cluster = clusters.get(key)
        if cluster is None:
            errors.append(f"scheduledbackup/{backup['metadata']['name']}: cluster {key[1]} is not in the render")
        elif backup["spec"].get("method") == "plugin":
            wanted = backup["spec"]["pluginConfiguration"]["name"]
            if not any(p["name"] == wanted for p in cluster["spec"].get("plugins") or []):
                errors.append(f"scheduledbackup/{backup['metadata']['name']}: cluster {key[1]} has no plugin {wanted}")
    for store in of_kind(docs, "ObjectStore", "barmancloud.cnpg.io"):
        for ref in ((store["spec"]["configuration"].get("s3Credentials") or {}).values()):
            if isinstance(ref, dict):
                secrets_needed.setdefault(f"{namespace(store)}/{ref['name']}", set()).add(ref["key"])
    if clusters:
        for dep in deployments:
            reads_db = any(
                e["name"] == "JAMAA__DATABASE__URL" for c in dep["spec"]["template"]["spec"]["containers"]
                for e in c.get("env") or []
            )
            wanted = dep["metadata"]["name"].replace("-", "_")
            if reads_db and wanted not in databases:
                errors.append(f"deployment/{dep['metadata']['name']}: no CloudNativePG Database {wanted} in the render")

    for rmq in of_kind(docs, "RabbitmqCluster", "rabbitmq.com"):
        replicas = rmq["spec"].get("replicas", 1)
        if replicas % 2 == 0:
            errors.append(f"rabbitmqcluster/{rmq['metadata']['name']}: {replicas} nodes; quorum queues need an odd number")

    services = of_kind(docs, "Service")
    for sm in of_kind(docs, "ServiceMonitor", "monitoring.coreos.com"):
        where = f"servicemonitor/{sm['metadata']['name']}"
        ns_sel = sm["spec"].get("namespaceSelector") or {}
        allowed = None if ns_sel.get("any") else set(ns_sel.get("matchNames") or [namespace(sm)])
        matched = [
            s for s in services
            if (allowed is None or namespace(s) in allowed)
            and selects(sm["spec"]["selector"], s["metadata"].get("labels") or {})
        ]
        if not matched:
            errors.append(f"{where}: its selector matches no Service of the render")
        for endpoint in sm["spec"].get("endpoints") or []:
            port = endpoint.get("port")
            for s in matched:
                if port and port not in {p.get("name") for p in s["spec"].get("ports") or []}:
                    errors.append(f"{where}: service/{s['metadata']['name']} has no port named {port}")

    for route in of_kind(docs, "HTTPRoute", "gateway.networking.k8s.io"):
        where = f"httproute/{route['metadata']['name']}"
        for rule in route["spec"].get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if ref.get("kind", "Service") != "Service" or ref.get("group", "") != "":
                    continue
                ns = ref.get("namespace", namespace(route))
                svc = next((s for s in services if namespace(s) == ns and s["metadata"]["name"] == ref["name"]), None)
                if svc is None:
                    errors.append(f"{where}: backend service {ns}/{ref['name']} is not in the render")
                elif ref.get("port") not in {p["port"] for p in svc["spec"].get("ports") or []}:
                    errors.append(f"{where}: service/{ref['name']} exposes no port {ref.get('port')}")
    return errors


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[-1]))
