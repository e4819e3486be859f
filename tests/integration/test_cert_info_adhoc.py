# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_info through the real ``ansible`` ad-hoc command, over the sample PKIs of
sample_pki.py: every sample node reports exactly its one defect, the healthy one none,
in check mode too, and -vvv output never shows key material."""
from __future__ import annotations

import json
import os
import subprocess
import typing as t

import pytest

import sample_pki
from ansible_json import json_callback_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def ansible_env(json_output: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + env.get("PATH", ""))
    if json_output:
        env.update(json_callback_env())
    return env


def run_ansible(args: list[str], json_output: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["ansible"] + args, capture_output=True, text=True, env=ansible_env(json_output),
                          cwd=ROOT, timeout=600, check=False)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> tuple[str, list[dict[str, t.Any]]]:
    outdir = str(tmp_path_factory.mktemp("cert-info-samples"))
    return outdir, sample_pki.generate(outdir)


def adhoc_args(args: dict[str, t.Any]) -> str:
    return " ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in args.items())


def test_adhoc_command_prints_the_finding(samples):
    outdir, index = samples
    sample = next(s for s in index if s["name"] == "san_missing_ip")
    sample["args"]["client_cert"] = os.path.join(outdir, "san_missing_ip/var/lib/kubelet/pki/kubelet-client-current.pem")
    done = run_ansible(["localhost", "-c", "local", "-m", "kubecerts.kubelet.cert_info", "-a",
                        adhoc_args(sample["args"])])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "localhost | SUCCESS" in done.stdout
    assert '"code": "san_missing_ip"' in done.stdout
    assert "has no IP SANs" in done.stdout and "Traceback" not in done.stdout + done.stderr


# The samples live on this machine, whose /proc also shows the kubelets of any lab running here
# (containers share the host's process list): those are reported, rightly, on every sample.
MACHINE_FINDINGS = frozenset({"kubelet_process_untrusted"})
# A sample's defect that implies a second finding: an expired client certificate on a node with
# neither rotation nor a bootstrap kubeconfig also means the kubelet cannot recover by itself.
CONSEQUENCES = {"expired": ["kubelet_cannot_recover"]}


def test_every_sample_reports_its_defect_in_check_mode(samples):
    outdir, index = samples
    done = run_ansible(["all", "-i", os.path.join(outdir, "inventory.yml"), "--check", "-m",
                        "kubecerts.kubelet.cert_info", "-a", f"node_ips={sample_pki.NODE_IP} "
                        f"node_dns_names={sample_pki.NODE}"], json_output=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    hosts = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]
    assert len(hosts) == len(index)
    for sample in index:
        result = hosts[f"sample-{sample['name'].replace('_', '-')}"]
        assert not result.get("failed") and result["changed"] is False, result
        found = [f["code"] for f in result["findings"] if f["code"] not in MACHINE_FINDINGS]
        expected = [sample["expected"]] + CONSEQUENCES.get(sample["expected"], []) if sample["expected"] else []
        assert sorted(found) == sorted(expected), f"{sample['name']}: {result['findings']}"
        if sample["expected"]:
            assert all(f["path"] is None or f["path"].startswith(outdir) for f in result["findings"]
                       if f["code"] not in MACHINE_FINDINGS)


def test_verbose_output_shows_no_key_material(samples):
    outdir, index = samples
    healthy = next(s for s in index if s["name"] == "healthy")
    done = run_ansible(["localhost", "-c", "local", "-vvv", "-m", "kubecerts.kubelet.cert_info", "-a",
                        adhoc_args(healthy["args"])])
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout[done.stdout.index("{"):])
    assert [f for f in result["findings"] if f["code"] not in MACHINE_FINDINGS] == [], result["findings"]
    key_file = os.path.join(outdir, "healthy/var/lib/kubelet/pki/kubelet.key")
    key_lines = [line for line in open(key_file).read().splitlines() if "-----" not in line]
    for text in (done.stdout, done.stderr):
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in key_lines)


@pytest.mark.parametrize("option, message", [
    ("profile=nonsense", "value of profile must be one of"),
    ("node_ips=10.0.0.999", "\"msg\": \"node_ips: '10.0.0.999' is not an IP address\""),
    ("warn_days=-1", "\"msg\": \"warn_days: -1 is negative;"),
])
def test_bad_option_fails_with_one_line(samples, option, message):
    done = run_ansible(["localhost", "-c", "local", "-m", "kubecerts.kubelet.cert_info", "-a", option])
    assert done.returncode != 0
    assert message in done.stdout and "Traceback" not in done.stdout
