"""Validates a render's operator objects (custom resources) against the JSON Schemas in
deploy/schemas/, and hands every other object on to the Kubernetes schema validation.

Usage: python validate_operator_objects.py RENDER.yaml CORE_OUT.yaml [LABEL]
(run by deploy/validate.sh with the venv's Python, which has jsonschema and PyYAML as
dependencies of kubernetes-validate).

- An object whose apiVersion and kind have a schema, deploy/schemas/<group>/<version>/<Kind>.json,
  is validated against it (JSON Schema 2020-12; the schemas refer to each other by `urn:jamaa:…`
  identifiers resolved from that directory, so nothing is fetched). Every error is listed.
- An object of a built-in Kubernetes API group (the core group, a group without a dot, or one
  ending in .k8s.io) is written to CORE_OUT, for kubernetes-validate.
- Anything else is an error: a kind that is neither a Kubernetes kind nor one of ours, e.g. a
  custom resource of an operator whose schema nobody wrote, or a mistyped apiVersion.

Exits 1 on any error; otherwise prints how many operator objects of which kinds were valid.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import jsonschema
import referencing
import yaml

SCHEMAS = Path(__file__).resolve().parent / "schemas"


def load_schemas() -> tuple[dict[tuple[str, str], jsonschema.protocols.Validator], referencing.Registry]:
    """Every schema file, checked as a schema, keyed by (apiVersion, kind) for the kinds."""
    contents = {}
    for path in sorted(SCHEMAS.rglob("*.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        contents[path] = schema
    registry = referencing.Registry().with_resources(
        (schema["$id"], referencing.Resource.from_contents(schema)) for schema in contents.values()
    )
    validators = {}
    for path, schema in contents.items():
        relative = path.relative_to(SCHEMAS).parts
        if len(relative) != 3:
            continue  # shared definitions (common.json)
        group, version, kind = relative[0], relative[1], relative[2].removesuffix(".json")
        api_version = f"{group}/{version}"
        declared = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
        if declared != (api_version, kind):
            sys.exit(f"error: {path} declares {declared}, its path says {(api_version, kind)}")
        validators[(api_version, kind)] = jsonschema.Draft202012Validator(schema, registry=registry)
    return validators, registry


def is_builtin(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")


def where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path or "(object)"


def main(render: str, core_out: str, label: str) -> int:
    validators, _ = load_schemas()
    with open(render) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    errors: list[str] = []
    valid: Counter[str] = Counter()
    core = []
    for doc in docs:
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        name = f"{kind}/{(doc.get('metadata') or {}).get('name', '?')}"
        validator = validators.get((api_version, kind))
        if validator is not None:
            found = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
            for error in found:
                errors.append(f"{name} ({api_version}) {where(error)}: {error.message}")
            if not found:
                valid[kind] += 1
        elif is_builtin(api_version):
            core.append(doc)
        else:
            errors.append(
                f"{name}: kind {kind} of {api_version} is neither a Kubernetes kind nor one with a "
                f"schema under deploy/schemas/ (add deploy/schemas/{api_version}/{kind}.json)"
            )
    with open(core_out, "w") as f:
        yaml.safe_dump_all(core, f, sort_keys=False)
    if errors:
        for e in errors:
            print(f"ERROR {label}: {e}")
        return 1
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(valid.items())) or "none"
    print(f"OK {label}: {sum(valid.values())} operator objects valid against deploy/schemas ({kinds}); "
          f"{len(core)} Kubernetes objects go on to kubernetes-validate")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[-1]))
