"""Deploy manifests: valid against the Kubernetes schemas (offline) and following the house rules.

Schemas come from the ``kubernetes-validate`` wheel, which ships them, so nothing is
downloaded. The rules are what reviewers otherwise check by eye: probes, resource
limits, pinned images, secrets only by reference, selectors that select something.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from reference.serve import build_parser

kubernetes_validate = pytest.importorskip("kubernetes_validate")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.33.0"


def k8s_docs() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> list[dict]:
    return [d for _, d in k8s_docs() if d["kind"] == kind]


def workloads() -> list[dict]:
    return by_kind("Deployment") + by_kind("StatefulSet")


def test_every_manifest_is_valid_against_the_kubernetes_schema():
    docs = k8s_docs()
    assert {d["kind"] for _, d in docs} >= {"Deployment", "Service", "HorizontalPodAutoscaler", "StatefulSet"}
    for name, doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises with the path of the error


def test_the_validator_really_rejects_broken_manifests():
    broken = yaml.safe_load((DEPLOY / "k8s" / "model-server.yaml").read_text().split("---")[0])
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    typo = yaml.safe_load((DEPLOY / "k8s" / "model-server.yaml").read_text().split("---")[0])
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def test_containers_have_probes_limits_and_pinned_images():
    for w in workloads():
        for c in w["spec"]["template"]["spec"]["containers"]:
            where = f"{w['metadata']['name']}/{c['name']}"
            assert "readinessProbe" in c and "livenessProbe" in c, f"{where}: needs both probes"
            assert c["resources"]["limits"].keys() >= {"cpu", "memory"}, f"{where}: needs cpu and memory limits"
            assert c["resources"]["requests"].keys() >= {"cpu", "memory"}, f"{where}: needs requests"
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", c["image"]) and not c["image"].endswith(":latest"), where
            assert c.get("securityContext", {}).get("allowPrivilegeEscalation") is False, where


def test_model_server_probes_use_the_servers_own_endpoints_and_flags():
    (dep,) = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "lab-model-server"]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["readinessProbe"]["httpGet"]["port"] in port_names
    cmd = c["command"]
    assert cmd[:3] == ["python", "-m", "reference.serve"]
    args = build_parser().parse_args(cmd[3:])  # exits (fails) on an option the server does not have
    assert args.port == port_names["http"] and args.host == "0.0.0.0"
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= 30 + 5, "grace period must cover the 5 s preStop sleep and uvicorn's 30 s drain"


def test_secrets_are_referenced_never_committed():
    assert not by_kind("Secret"), "no Secret objects (with values) in git"
    text = "\n".join(p.read_text() for p in DEPLOY.rglob("*") if p.is_file())
    assert not re.search(r"(sk-[A-Za-z0-9]{10,}|api[-_]?key:\s*['\"]?[A-Za-z0-9]{16,})", text, re.I)
    for w in workloads():
        for c in w["spec"]["template"]["spec"]["containers"]:
            for env in c.get("env", []):
                if re.search(r"KEY|TOKEN|PASSWORD|SECRET", env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{env['name']} must come from a Secret"


def test_services_select_pods_and_target_named_ports():
    pods = {w["metadata"]["name"]: w["spec"]["template"] for w in workloads()}
    for svc in by_kind("Service"):
        matching = [t for t in pods.values()
                    if svc["spec"]["selector"].items() <= t["metadata"]["labels"].items()]
        assert matching, f"Service {svc['metadata']['name']} selects no pods"
        names = {p["name"] for c in matching[0]["spec"]["containers"] for p in c["ports"]}
        assert all(p["targetPort"] in names for p in svc["spec"]["ports"])
    for hpa in by_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in pods
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_compose_file_wires_the_same_service_without_secret_values():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"model-server", "qdrant"}
    server = services["model-server"]
    assert server["environment"]["QDRANT_URL"] == "http://qdrant:6333"
    assert server["environment"]["LAB_SERVER_API_KEY"].startswith("${LAB_SERVER_API_KEY:?")
    assert server["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert "/ready" in " ".join(server["healthcheck"]["test"])
    build_parser().parse_args(server["command"][3:])
    for name, svc in services.items():
        assert "healthcheck" in svc and svc["deploy"]["resources"]["limits"], name
        assert not svc["image"].endswith(":latest"), name
        assert all(str(p).startswith("127.0.0.1:") for p in svc.get("ports", [])), f"{name}: publish on loopback"


@pytest.mark.skipif(shutil.which("hadolint") is None and not Path(".venv/bin/hadolint").exists(),
                    reason="hadolint not installed")
def test_dockerfile_passes_hadolint():
    exe = shutil.which("hadolint") or ".venv/bin/hadolint"
    r = subprocess.run([exe, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
