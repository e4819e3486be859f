#!/usr/bin/env bash
# make demo: a lab of real systemd nodes, broken the five seed ways, audited, repaired
# with the collection's own playbooks, audited again, and a before/after table.
# Exits 0 only when the "after" audit is clean.
set -euo pipefail
cd "$(dirname "$0")/.."
out=demo-output
lab=(python tests/lab/labctl.py)
inventory=.lab/inventory.yml
rm -rf "$out" && mkdir -p "$out"

say() { printf '\n==> %s\n' "$*"; }

say "1/6 bringing up the lab (cp1 and five workers)"
"${lab[@]}" down >/dev/null 2>&1 || true
"${lab[@]}" up --workers 5

say "2/6 breaking it the five seed ways"
inject() {   # node scenario label
    "${lab[@]}" break --node "$1" --scenario "$2" ${4:+--from "$4"}
    echo "$1 $3" >> "$out/injected.txt"
}
inject kubeadm1 no-ip-san "000 no-ip-san"
inject cp1 loopback-only "001 loopback-only (API server)"
inject nocrypto1 csr-pending "002 csr-pending"
inject hand1 copied-identity "003 copied-identity" kubeadm1
inject kubeadm2 missing-key "003 missing-key"
inject cp1 stale-ca "004 stale-ca (API server)"
inject k3s1 expired "expired"
sleep 25   # the API's node-lifecycle grace period: NotReady nodes show as such

say "3/6 auditing (kubecerts.kubelet.audit)"
ansible-playbook -i "$inventory" playbooks/audit.yml \
    -e audit_report_dir="$PWD/$out/before" -e audit_fail_on=never | tee "$out/audit-before.log" | tail -40

say "4/6 repairing"
echo "seed 001 is the API server's own certificate, which is not a kubelet certificate:"
echo "the audit reports it (apiserver_san_mismatch) and the operator reissues it, as k0s"
echo "does once the network is up. In the lab:"
"${lab[@]}" heal --node cp1 --what apiserver-cert
echo "everything else is repaired by kubecerts.kubelet.repair:"
ansible-playbook -i "$inventory" playbooks/repair.yml \
    -e repair_report_dir="$PWD/$out/repair" \
    -e repair_api_ca_cert=/etc/kubernetes/pki/new-ca.crt | tee "$out/repair.log" | tail -60

say "5/6 auditing again"
ansible-playbook -i "$inventory" playbooks/audit.yml \
    -e audit_report_dir="$PWD/$out/after" -e audit_fail_on=never | tee "$out/audit-after.log" | tail -40

say "6/6 before and after"
python tools/demo_table.py "$out/before/report.json" "$out/after/report.json" "$out/injected.txt" \
    | tee "$out/table.txt"
