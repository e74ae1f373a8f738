#!/usr/bin/env python3
"""Generate config/rbac/rbac.yaml from the Helm chart: the one source of the RBAC.

    gen-config-rbac.py RENDERED [--check]

RENDERED is the chart rendered with its default values (e2e/scripts/render-chart.sh writes it
as OUTDIR/default.yaml). Every ClusterRole, ClusterRoleBinding, Role and RoleBinding in it is
written to config/rbac/rbac.yaml; with --check, exit 1 when that file differs (stale).
"""

from __future__ import annotations

import sys
from pathlib import Path

RBAC_KINDS = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
TARGET = Path(__file__).resolve().parent.parent / "config" / "rbac" / "rbac.yaml"
HEADER = (
    "# Generated from helm/pki-issuer (default values, release pki-issuer in namespace\n"
    "# pki-issuer) by hack/gen-config-rbac.py: do not edit; change the chart's templates and run\n"
    "# `make generate`. `make lint-packaging` fails when this file is stale.\n"
)


def rbac_documents(rendered: str) -> list[str]:
    docs = []
    for doc in rendered.split("\n---\n"):
        doc = doc.strip().removeprefix("---").strip()
        kind = next(
            (line.split(":", 1)[1].strip() for line in doc.splitlines() if line.startswith("kind:")),
            None,
        )
        if kind in RBAC_KINDS:
            docs.append(doc)
    return docs


def main() -> int:
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--check"):
        print(__doc__, file=sys.stderr)
        return 2
    docs = rbac_documents(Path(sys.argv[1]).read_text())
    if not docs:
        print(f"no RBAC objects in {sys.argv[1]}", file=sys.stderr)
        return 1
    text = HEADER + "".join(f"---\n{d}\n" for d in docs)
    if len(sys.argv) == 3:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run `make generate`", file=sys.stderr)
            return 1
        print(f"{TARGET.name} matches the chart ({len(docs)} objects)")
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET} ({len(docs)} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
