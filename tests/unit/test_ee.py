"""The execution environment's definition and helpers (tools/ee_*.py): what `make ee` and the
`ee` stage of `make test` rely on without building anything."""
from __future__ import annotations

import configparser
import copy
import importlib.util
import json
import os
import sys
import types

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_tool(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pins(path: str) -> dict[str, str]:
    result = {}
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        for line in handle:
            name, sep, version = line.split("#")[0].strip().partition("==")
            if sep:
                result[name.lower()] = version
    return result


def test_ee_pins_are_the_tested_versions():
    ee, tested = pins("ee/requirements.txt"), pins("requirements/test.txt")
    assert set(ee) == {"cryptography", "kubernetes", "jmespath"}
    assert {name: tested.get(name) for name in ee} == ee


def test_collection_declares_its_dependencies_for_ansible_builder():
    with open(os.path.join(ROOT, "meta", "execution-environment.yml"), encoding="utf-8") as handle:
        meta = yaml.safe_load(handle)
    deps = meta["dependencies"]
    with open(os.path.join(ROOT, deps["python"]), encoding="utf-8") as handle:
        names = {line.split(">=")[0].strip() for line in handle if line.strip() and not line.startswith("#")}
    assert names == {"cryptography", "kubernetes", "jmespath"}
    assert os.path.isfile(os.path.join(ROOT, deps["system"]))


def test_definition_installs_the_collection_from_its_tarball():
    with open(os.path.join(ROOT, "ee", "execution-environment.yml"), encoding="utf-8") as handle:
        definition = yaml.safe_load(handle)
    assert definition["version"] == 3
    with open(os.path.join(ROOT, "ee", definition["dependencies"]["galaxy"]), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    [collection] = galaxy["collections"]
    [copied] = definition["additional_build_files"]
    assert collection == {"name": f"{copied['dest']}/kubecerts-kubelet.tar.gz", "type": "file"}


def test_pip_configuration_is_carried_over_with_its_ca_bundle(tmp_path, monkeypatch):
    base = load_tool("ee_base_image")
    bundle = tmp_path / "bundle.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\ncert = {bundle}\nfind-links = /opt/wheels\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:3141/simple")
    out = tmp_path / "out"
    base.write_pipconf(str(out), "/etc/xdg/pip")
    written = configparser.ConfigParser(interpolation=None)
    written.read(out / "pip.conf")
    assert written["global"]["index-url"] == "http://127.0.0.1:3141/simple"
    assert written["global"]["cert"] == "/etc/xdg/pip/ca-bundle.crt"
    assert (out / "ca-bundle.crt").read_text() == bundle.read_text()
    # A host directory means nothing inside a container.
    assert "find-links" not in written["global"]


def test_base_image_tag_follows_the_recipe(monkeypatch):
    base = load_tool("ee_base_image")
    tag = base.image_tag("bookworm")
    assert tag.startswith("localhost/kubecerts-ee-base:")
    assert base.image_tag("bookworm") == tag
    monkeypatch.setattr(base, "PACKAGES", (*base.PACKAGES, "git"))
    assert base.image_tag("bookworm") != tag


REPORT = {
    "nodes": {"n1": {"findings": [{"code": "expiring_soon", "severity": "warning", "source": "cert_info",
                                   "path": "/a.crt", "message": "in 2 days"}]},
              "n2": {"findings": []}},
    "fleet_findings": [{"code": "duplicate_identity", "severity": "critical", "source": "fleet",
                        "path": None, "message": "n1 and n2"}],
    "apiservers": [{"endpoint": "10.0.0.1:6443", "findings": []}],
}


def write(tmp_path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_audit_comparison_ignores_messages_and_catches_a_missing_finding(tmp_path):
    compare = load_tool("ee_compare")
    plain = write(tmp_path, "plain.json", REPORT)
    other = copy.deepcopy(REPORT)
    other["nodes"]["n1"]["findings"][0]["message"] = "in 1 day"
    assert compare.main(["audit", plain, write(tmp_path, "same.json", other), "--min-findings", "2"]) == 0
    other["fleet_findings"] = []
    assert compare.main(["audit", plain, write(tmp_path, "missing.json", other)]) == 1
    assert compare.main(["audit", plain, plain, "--min-findings", "3"]) == 1
    assert compare.main(["audit", plain, plain, "--fewer-than", plain]) == 1


def rotation(status: str, new_serving: str) -> dict[str, object]:
    return {"nodes": [{"node": "n1", "status": status,
                       "client": {"old_fingerprint": "A", "new_fingerprint": "A"},
                       "serving": {"old_fingerprint": "B", "new_fingerprint": new_serving}}]}


@pytest.mark.parametrize("other, expected", [
    (rotation("rotated", "D"), 0),            # other fingerprints, same outcome
    (rotation("rotated", "B"), 1),            # the serving certificate was not reissued
    (rotation("ROLLED BACK (healthz)", "C"), 1),
])
def test_rotation_comparison(tmp_path, other, expected):
    compare = load_tool("ee_compare")
    plain = write(tmp_path, "plain.json", rotation("rotated", "C"))
    assert compare.main(["rotate", plain, write(tmp_path, "other.json", other)]) == expected


def test_rotated_requires_a_rotation_and_no_failure(tmp_path):
    compare = load_tool("ee_compare")
    assert compare.main(["rotated", write(tmp_path, "ok.json", rotation("rotated", "C"))]) == 0
    assert compare.main(["rotated", write(tmp_path, "none.json", rotation("unchanged", "B"))]) == 1
    assert compare.main(["rotated", write(tmp_path, "bad.json", rotation("FAILED (node_ready)", "C"))]) == 1
