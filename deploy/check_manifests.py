"""Project rules for a rendered Kustomize build, on top of the schema validation.

Usage: python check_manifests.py RENDER.yaml [LABEL]   (run by deploy/validate.sh with the venv's Python,
which has PyYAML as a dependency of kubernetes-validate). Exits 1 and lists every violation, or
prints the Secrets and keys the render expects to find in the cluster.

Rules, for every Deployment:
- each container drops ALL capabilities, forbids privilege escalation, has a read-only root
  filesystem, runs as non-root with the RuntimeDefault seccomp profile (pod or container level);
- each container has requests and limits for cpu and memory, and start-up, readiness and
  liveness probes;
- terminationGracePeriodSeconds exceeds the preStop sleep plus JAMAA__SERVER__DRAIN_TIMEOUT_SECONDS;
- every ConfigMap it references is in the render.
And: no Secret is in the render (they are created out of band), and every Service selects a
Deployment's pods on a port that the pod names.
"""

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
                    secrets_needed.setdefault(ref["name"], set()).add(ref["key"])
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
            if selector and all(
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

    if errors:
        for e in errors:
            print(f"ERROR {label}: {e}")
        return 1
    needed = ", ".join(f"{s} ({', '.join(sorted(k))})" for s, k in sorted(secrets_needed.items()))
    print(f"OK {label}: project rules hold for {len(deployments)} Deployments; "
          f"Secrets to create: {needed or 'none'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[-1]))
