"""The AKS services' Dockerfile under checkov's dockerfile checks (offline), no failed check
except skips written in the file with a reason."""

from __future__ import annotations

import infra


def test_checkov_on_the_dockerfile() -> None:
    dockerfile = infra.ROOT / "Dockerfile"
    report = infra.checkov(dockerfile, "dockerfile", file=True)
    assert report["summary"]["passed"] > 20, report["summary"]
    assert infra.failures(report) == []
    annotations = infra.skip_annotations([dockerfile])
    for _, check, reason in annotations:
        assert len(reason) > 20, f"Dockerfile: checkov skip {check} needs a reason"
    assert {c for _, c, _ in annotations} == {c["check_id"] for c in infra.skipped(report)}
    text = dockerfile.read_text()
    assert "HEALTHCHECK" in text and "\nUSER " in text  # CKV_DOCKER_2 and non-root, explicitly
