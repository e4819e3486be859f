# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ca_trust molecule scenario, driven from the controller against a running lab.

Part 1, a full three-phase CA rotation (rotate_ca trust, reissue, retire) while a sampler
reads every kubelet's Node lease (kube-node-lease) every second: no node's gap between lease
renewals may exceed the restart window (default: kube-controller-manager's node-monitor grace
period, after which a node turns NotReady). Between reissue and retire the test plays the
operator's control-plane tooling (`kubeadm certs renew`: the API server's, kube-controller-
manager's and the admin's certificates from the new CA); before that, retire must refuse.
Part 2, the OKD case: `labctl break stale-ca` turns every node NotReady, trust_ca repairs
them, and a second run changes nothing. Part 3: a CA change after which kubeadm1's kubelet
unit refuses to start is rolled back, and the node is Ready on its previous bundle.

Usage: python scenario.py LAB_DIR REPORT.json   (exit status 0 when every check passed)
"""
from __future__ import annotations

import base64
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import yaml  # noqa: E402
from lablib import kube  # noqa: E402
from lablib.api import Api  # noqa: E402
from lablib.util import podman  # noqa: E402

RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
REFUSED_CN = "kubecerts-lab-refused-ca"
ROTATION_CN = "kubernetes-rotated"


class Failed(Exception):
    pass


class Lab:
    def __init__(self, lab_dir: str, work: str) -> None:
        self.dir = lab_dir
        self.work = work
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as handle:
            self.state = json.load(handle)
        self.nodes = [n["name"] for n in self.state["nodes"]]
        self.container = {n["name"]: n["container"] for n in self.state["nodes"]}
        self.trust_files = [os.path.join(lab_dir, "ca", "ca.crt")]
        self.client = (os.path.join(lab_dir, "pki", "admin.crt"), os.path.join(lab_dir, "pki", "admin.key"))
        self.lock = threading.Lock()

    def api(self) -> Api:
        with self.lock:
            return Api(self.state["api_server"], self.trust_files, *self.client, timeout=3.0)

    def exec(self, node: str, script: str) -> str:
        proc = podman("exec", self.container[node], "sh", "-ec", script, check=False, timeout=120)
        if proc.returncode != 0:
            raise Failed(f"{node}: {script[:80]}...: {proc.stderr.decode(errors='replace').strip()[-400:]}")
        return proc.stdout.decode(errors="replace")

    def node_states(self) -> dict[str, str]:
        return self.api().node_states()

    def wait_states(self, want: t.Callable[[str], bool], what: str, timeout: float) -> dict[str, str]:
        deadline, states = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            states = self.api().try_node_states() or {}
            if states and all(want(states.get(n, "Unknown")) for n in self.nodes):
                return states
            time.sleep(2)
        raise Failed(f"nodes did not become {what} within {timeout:.0f}s: {states}")


class Sampler(threading.Thread):
    """Reads the Node leases every second and keeps each node's distinct renewal times."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.beats: dict[str, set[float]] = {n: set() for n in lab.nodes}
        self.grace = float(kube.NODE_MONITOR_GRACE.rstrip("s"))
        self.errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                leases = self.lab.api().get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
                for lease in leases.get("items", []):
                    name, stamp = lease["metadata"]["name"], lease["spec"].get("renewTime")
                    if name in self.beats and stamp:
                        with self.lock:
                            self.beats[name].add(parse_time(stamp))
            except Exception:  # the API restarts during the phases; count and keep sampling
                self.errors += 1
            self.stop.wait(1.0)

    def gaps(self, start: float, end: float) -> dict[str, float]:
        """Largest time without a heartbeat per node within [start, end]."""
        result = {}
        with self.lock:
            snapshot = {name: set(beats) for name, beats in self.beats.items()}
        for name, beats in snapshot.items():
            inside = sorted(b for b in beats if start <= b <= end)
            before = [b for b in beats if b < start]
            points = ([max(before)] if before else [start]) + inside + [end]
            result[name] = round(max(b - a for a, b in zip(points, points[1:])), 1)
        return result


def parse_time(stamp: str) -> float:
    """A lease's renewTime: RFC 3339 with microseconds."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def playbook(lab: Lab, name: str, *extra: str, expect_ok: bool = True) -> dict[str, t.Any]:
    # A clean Ansible environment: molecule's own settings (config file, callback, roles
    # path) are for its converge, not for the playbooks under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
               ANSIBLE_HOST_KEY_CHECKING="false")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
           "-i", os.path.join(lab.dir, "inventory.yml"), "-i", os.path.join(HERE, "inventory", "lab_vars.yml"),
           os.path.join(REPO, "playbooks", name), *extra]
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    label = re.sub(r"[^\w.=-]+", "_", f"{len(os.listdir(lab.work)):02d}-{name}-{'-'.join(extra)}")[:90]
    log = os.path.join(lab.work, label + ".log")
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(proc.stdout + proc.stderr)
    recap = {m.group(1): {"changed": int(m.group(2)), "unreachable": int(m.group(3)), "failed": int(m.group(4))}
             for m in RECAP.finditer(proc.stdout)}
    result = {"playbook": name, "args": list(extra), "rc": proc.returncode, "seconds": round(time.time() - started, 1),
              "started": started, "ended": time.time(), "recap": recap, "log": log}
    if expect_ok and proc.returncode != 0:
        raise Failed(f"{name} {' '.join(extra)} failed (rc {proc.returncode}), see {log}")
    # Whitespace-normalised, so that wrapped output still matches the expected messages.
    result["output"] = " ".join(proc.stdout.split())[-8000:] if not expect_ok else ""
    return result


def unchanged(run: dict[str, t.Any]) -> None:
    changed = {h: r["changed"] for h, r in run["recap"].items() if r["changed"]}
    if changed:
        raise Failed(f"second run of {run['playbook']} {' '.join(run['args'])} changed something: {changed}")


NODE_FINGERPRINTS = r"""
import re, subprocess, sys, base64
path, kind = sys.argv[1], sys.argv[2]
if kind == "kubeconfig":
    import yaml
    cluster = yaml.safe_load(open(path))["clusters"][0]["cluster"]
    data = cluster.get("certificate-authority-data")
    text = base64.b64decode(data).decode() if data else open(cluster["certificate-authority"]).read()
else:
    text = open(path).read()
for block in re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S):
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=block + "\n",
                         capture_output=True, text=True, check=True).stdout
    print(out.split("=", 1)[1].strip())
"""


def ca_fingerprints(lab: Lab, node: str, path: str, kubeconfig: bool = False) -> list[str]:
    """Fingerprints read on the node with openssl, independently of the collection's code."""
    script = f"python3 -c '{NODE_FINGERPRINTS}' {path} {'kubeconfig' if kubeconfig else 'file'}"
    return lab.exec(node, script).split()


def fingerprint_of(lab: Lab, node: str, path: str) -> str:
    return lab.exec(node, f"openssl x509 -in {path} -noout -fingerprint -sha256").split("=", 1)[1].strip()


def renew_control_plane(lab: Lab) -> None:
    """What `kubeadm certs renew` does between reissue and retire: the control plane's own
    certificates from the new CA (its key now is /etc/kubernetes/pki/ca.key on cp1): the API
    server's serving pair, its kubelet client pair, kube-controller-manager's kubeconfig and
    the admin kubeconfig. Their CAs are the kubelets' business, not the collection's."""
    sans = lab.exec("cp1", "openssl x509 -in /etc/kubernetes/pki/apiserver.crt -noout -ext subjectAltName | tail -1")
    sans = sans.strip().replace("IP Address:", "IP:")
    lab.exec("cp1", f"""
cd /etc/kubernetes/pki
# issue NAME SUBJECT EXTENSIONS: a P-256 pair NAME.key.new/NAME.crt.new from the new CA
issue() {{
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key.new" -subj "$2" \
    -out /tmp/renew.csr 2>/dev/null
  printf "$3" > /tmp/renew.ext
  openssl x509 -req -in /tmp/renew.csr -CA rotation-ca.crt -CAkey ca.key -CAcreateserial -days 365 \
    -extfile /tmp/renew.ext -out "$1.crt.new" 2>/dev/null
}}
client='extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n'
issue apiserver /CN=kube-apiserver 'subjectAltName={sans}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n'
issue apiserver-kubelet-client /O=system:masters/CN=kube-apiserver-kubelet-client "$client"
issue /tmp/controller-manager /CN=system:kube-controller-manager "$client"
issue /tmp/admin /O=system:masters/CN=kubernetes-admin "$client"
for name in apiserver apiserver-kubelet-client; do mv $name.key.new $name.key && mv $name.crt.new $name.crt; done
python3 - <<'PY'
import base64, re
conf = "/etc/kubernetes/controller-manager.conf"
data = {{k: base64.b64encode(open(f, "rb").read()).decode() for k, f in (
    ("certificate-authority-data", "/etc/kubernetes/pki/rotation-ca.crt"),
    ("client-certificate-data", "/tmp/controller-manager.crt.new"),
    ("client-key-data", "/tmp/controller-manager.key.new"))}}
text = open(conf).read()
for key, value in data.items():
    text = re.sub(key + r": \\S+", key + ": " + value, text)
open(conf, "w").write(text)
PY
rm -f /tmp/controller-manager.*
systemctl restart kube-apiserver kube-controller-manager
""")
    cert, key = lab.exec("cp1", "cat /tmp/admin.crt.new"), lab.exec("cp1", "cat /tmp/admin.key.new; rm -f /tmp/admin.*")
    for path, data, mode in ((lab.client[0], cert, 0o644), (lab.client[1], key, 0o600)):
        with open(path, "w", encoding="ascii") as handle:
            handle.write(data)
        os.chmod(path, mode)
    kubeconfig = os.path.join(lab.dir, "admin.kubeconfig")
    with open(kubeconfig, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    user = doc["users"][0]["user"]
    user["client-certificate-data"] = base64.b64encode(cert.encode()).decode()
    user["client-key-data"] = base64.b64encode(key.encode()).decode()
    with open(kubeconfig, "w", encoding="utf-8") as handle:
        yaml.safe_dump(doc, handle, sort_keys=False)


def main() -> int:
    lab_dir, report_path = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    # Playbook logs outlive molecule's ephemeral directory, for a failure to be read afterwards.
    logs_root = os.path.join(REPO, "test-output", "ca_trust")
    os.makedirs(logs_root, exist_ok=True)
    work = tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=logs_root)
    lab = Lab(lab_dir, work)
    report: dict[str, t.Any] = {"lab": lab_dir, "logs": work, "runs": [], "checks": [], "phases": {}}
    sampler = Sampler(lab)

    def check(name: str, ok: bool, detail: t.Any = "") -> None:
        report["checks"].append({"check": name, "ok": ok, "detail": detail})
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail if not ok else ''}", flush=True)
        if not ok:
            raise Failed(name)

    def run(name: str, *extra: str, expect_ok: bool = True) -> dict[str, t.Any]:
        result = playbook(lab, name, *extra, expect_ok=expect_ok)
        report["runs"].append({k: v for k, v in result.items() if k != "output"})
        print(f"     {name} {' '.join(extra)}: rc {result['rc']} in {result['seconds']}s", flush=True)
        return result

    try:
        check("every node starts Ready", set(lab.wait_states(lambda s: s == "Ready", "Ready", 120).values()) == {"Ready"})
        old_fp = fingerprint_of(lab, "cp1", "/etc/kubernetes/pki/ca.crt")
        lab.exec("cp1", f"""cd /etc/kubernetes/pki && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
-nodes -keyout rotation-ca.key -out rotation-ca.crt -days 3650 -subj /CN={ROTATION_CN} \
-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null""")
        new_fp = fingerprint_of(lab, "cp1", "/etc/kubernetes/pki/rotation-ca.crt")
        new_pem = lab.exec("cp1", "cat /etc/kubernetes/pki/rotation-ca.crt")
        bundle = os.path.join(work, "trust.pem")
        with open(bundle, "w", encoding="ascii") as handle:
            handle.write(open(lab.trust_files[0], encoding="ascii").read() + new_pem)
        lab.trust_files = [bundle]
        sampler.start()
        rotation = ["-e", "rotate_ca_new_ca_cert=/etc/kubernetes/pki/rotation-ca.crt",
                    "-e", "rotate_ca_new_ca_key=/etc/kubernetes/pki/rotation-ca.key"]

        # ---- phase trust
        started = time.time()
        run("rotate_ca.yml", "-e", "rotate_ca_phase=trust", *rotation)
        report["phases"]["trust"] = {"start": started, "end": time.time()}
        for node in lab.nodes:
            kubeconfig = "/etc/kubernetes/worker-kubeconfig.yaml" if node == "hand1" else \
                "/var/lib/rancher/k3s/agent/kubelet.kubeconfig" if node == "k3s1" else "/etc/kubernetes/kubelet.conf"
            check(f"{node}: kubeconfig trusts old and new after trust",
                  ca_fingerprints(lab, node, kubeconfig, kubeconfig=True) == [old_fp, new_fp])
        refused = run("rotate_ca.yml", "-e", "rotate_ca_phase=retire", expect_ok=False)
        check("retire refuses to start before reissue", refused["rc"] != 0
              and "phase reissue of rotation" in refused["output"], refused["log"])

        # ---- phase reissue
        started = time.time()
        run("rotate_ca.yml", "-e", "rotate_ca_phase=reissue", *rotation)
        report["phases"]["reissue"] = {"start": started, "end": time.time()}
        check("cp1: the new CA signs (ca.key is the new CA's key)",
              lab.exec("cp1", "openssl pkey -in /etc/kubernetes/pki/ca.key -pubout")
              == lab.exec("cp1", "openssl x509 -in /etc/kubernetes/pki/rotation-ca.crt -noout -pubkey"))
        for node in ("kubeadm1", "nocrypto1"):
            issuer = lab.exec(node, "openssl x509 -in /var/lib/kubelet/pki/kubelet-client-current.pem -noout -issuer")
            check(f"{node}: client certificate issued by the new CA", ROTATION_CN in issuer, issuer.strip())
        refused = run("rotate_ca.yml", "-e", "rotate_ca_phase=retire", expect_ok=False)
        check("retire refuses while the API server serves from the old CA", refused["rc"] != 0
              and "would not verify the server" in refused["output"], refused["log"])
        check("the refused retire changed no node",
              ca_fingerprints(lab, "kubeadm1", "/etc/kubernetes/kubelet.conf", kubeconfig=True) == [old_fp, new_fp])

        # ---- the operator's control-plane tooling, then phase retire
        renew_control_plane(lab)
        started = time.time()
        run("rotate_ca.yml", "-e", "rotate_ca_phase=retire")
        report["phases"]["retire"] = {"start": started, "end": time.time()}
        again = run("rotate_ca.yml", "-e", "rotate_ca_phase=retire")
        unchanged(again)
        check("a second retire run changes nothing", True)
        for node in lab.nodes:
            kubeconfig = "/etc/kubernetes/worker-kubeconfig.yaml" if node == "hand1" else \
                "/var/lib/rancher/k3s/agent/kubelet.kubeconfig" if node == "k3s1" else "/etc/kubernetes/kubelet.conf"
            check(f"{node}: kubeconfig trusts only the new CA after retire",
                  ca_fingerprints(lab, node, kubeconfig, kubeconfig=True) == [new_fp])
        check("cp1: cluster CA file holds only the new CA",
              ca_fingerprints(lab, "cp1", "/etc/kubernetes/pki/ca.crt") == [new_fp])
        check("every node Ready after the rotation",
              set(lab.wait_states(lambda s: s == "Ready", "Ready", 120).values()) == {"Ready"})
        window = float(os.environ.get("CA_TRUST_RESTART_WINDOW", sampler.grace))
        report["restart_window"] = window
        for phase, span in report["phases"].items():
            gaps = sampler.gaps(span["start"], span["end"])
            span["max_heartbeat_gap"] = gaps
            check(f"phase {phase}: no heartbeat gap above {window:.0f}s", max(gaps.values()) <= window, gaps)
        report["sampler_errors"] = sampler.errors

        # ---- part 2: the OKD case on the rotated lab
        with open(os.path.join(lab.dir, "ca", "ca.crt"), "w", encoding="ascii") as handle:
            handle.write(new_pem)   # the lab's copy of the cluster CA follows the rotation
        broke = subprocess.run([sys.executable, os.path.join(REPO, "tests", "lab", "labctl.py"), "break",
                                "--node", "cp1", "--scenario", "stale-ca", "--lab-dir", lab.dir],
                               capture_output=True, text=True, timeout=600)
        check("labctl break stale-ca", broke.returncode == 0, broke.stderr[-400:])
        broken_at = time.time()
        lab.trust_files = [bundle, os.path.join(lab.dir, "ca", "new-ca.crt")]
        states = lab.wait_states(lambda s: s != "Ready", "NotReady", 90)
        check("stale-ca: every node NotReady", "Ready" not in states.values(), states)
        run("trust_ca.yml", "-e", f"trust_ca_new_ca_file={os.path.join(lab.dir, 'ca', 'new-ca.crt')}")
        check("stale-ca repaired: every node Ready",
              set(lab.wait_states(lambda s: s == "Ready", "Ready", 120).values()) == {"Ready"})
        # The instrument itself: the outage stale-ca caused must show as gaps above the window.
        outage = sampler.gaps(broken_at, time.time())
        report["phases_outage_stale_ca"] = outage
        check(f"the sampler sees the stale-ca outage (every gap above {window:.0f}s)",
              min(outage.values()) > window, outage)
        unchanged(run("trust_ca.yml", "-e", f"trust_ca_new_ca_file={os.path.join(lab.dir, 'ca', 'new-ca.crt')}"))
        check("a second trust_ca run changes nothing", True)

        # ---- part 3: a CA change after which the kubelet does not come back is put back
        lab.exec("cp1", f"""openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
-keyout /tmp/refused-ca.key -out /tmp/refused-ca.crt -days 30 -subj /CN={REFUSED_CN} \
-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null""")
        refused_ca = os.path.join(work, "refused-ca.crt")
        with open(refused_ca, "w", encoding="ascii") as handle:
            handle.write(lab.exec("cp1", "cat /tmp/refused-ca.crt; rm -f /tmp/refused-ca.*"))
        refused_fp = subprocess.run(["openssl", "x509", "-in", refused_ca, "-noout", "-fingerprint", "-sha256"],
                                    capture_output=True, text=True, check=True).stdout.split("=", 1)[1].strip()
        kubeconfig = "/etc/kubernetes/kubelet.conf"
        trusted_before = ca_fingerprints(lab, "kubeadm1", kubeconfig, kubeconfig=True)
        # The fault: kubeadm1's kubelet unit refuses to start once its kubeconfig trusts that CA
        # (one line of the CA's PEM found in the decoded certificate-authority-data).
        marker = open(refused_ca, encoding="ascii").read().splitlines()[1]
        lab.exec("kubeadm1", f"""cat >/usr/local/sbin/lab-refuse-ca <<'SH'
#!/bin/sh
awk '/certificate-authority-data:/ {{print $2}}' {kubeconfig} | base64 -d | grep -qF '{marker}' || exit 0
echo "lab fault: refusing CA {refused_fp}" >&2
exit 1
SH
chmod 755 /usr/local/sbin/lab-refuse-ca
printf '[Service]\\nExecStartPre=/usr/local/sbin/lab-refuse-ca\\n' >/etc/systemd/system/kubelet.service.d/90-lab-fault.conf
systemctl daemon-reload""")
        refused = run("trust_ca.yml", "-e", f"trust_ca_new_ca_file={refused_ca}", "--limit", "kubeadm1",
                      expect_ok=False)
        # systemd fails the start job itself when ExecStartPre fails, so the restart step fails.
        check("a CA change the kubelet unit refuses fails naming the node and the step", refused["rc"] != 0
              and "node kubeadm1 failed during the restart" in refused["output"]
              and "kubelet.service: systemctl restart failed" in refused["output"], refused["log"])
        check("kubeadm1: the kubeconfig is put back from this run's backup",
              ca_fingerprints(lab, "kubeadm1", kubeconfig, kubeconfig=True) == trusted_before)
        lab.exec("kubeadm1", "rm -f /etc/systemd/system/kubelet.service.d/90-lab-fault.conf "
                             "/usr/local/sbin/lab-refuse-ca && systemctl daemon-reload")
        check("kubeadm1 Ready on its previous CA bundle",
              lab.wait_states(lambda s: s == "Ready", "Ready", 120)["kubeadm1"] == "Ready")
        report["ok"] = True
    except Failed as exc:
        report["ok"] = False
        report["error"] = str(exc)
        print(f"FAILED: {exc}", file=sys.stderr)
    finally:
        sampler.stop.set()
        for where in (report_path, os.path.join(work, "report.json")):
            with open(where, "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=2, default=str)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
