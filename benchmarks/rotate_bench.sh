#!/usr/bin/env bash
# Rolling rotation speed: one `rotate` run with serial 1 on the lab, against the floor that
# run itself measured, i.e. the sum over nodes of each kubelet's restart-to-Ready time (from
# the restart until every gate passed, `restart_to_ready_seconds` in summary.json). Target:
# wall time <= 1.25 x that sum, and (wall - that sum) / nodes <= 1.2 s. Each rotation is
# followed by benchmarks/minimal_restart.yml on the same lab, the rolling restart an operator
# writes without the collection, and its wall time is reported beside ours.
#
#   usage: benchmarks/rotate_bench.sh [NODES]      NODES default: cp1,kubeadm1,k3s1,nocrypto1
#   env:   ROTATE_BENCH_KEEP=1 keeps the lab;  ROTATE_BENCH_RUNS=N repeats each rotation N times
#          ROTATE_BENCH_PREFIX=P names the lab's containers P-<node> (default mol-rotate-bench), so
#          that two benchmarks on one machine do not replace each other's lab
#          ROTATE_BENCH_STARTUP_DELAYS="0 10 30" (the default) runs the rotation once per value S,
#          every kubelet taking S more seconds to start (a systemd ExecStartPre sleep on the lab
#          nodes). The lab's real kubelets on fakecri are Ready within seconds; kubelets with a
#          container runtime, images and pods take longer (docs/rotation.md, "Speed"), so the
#          sweep shows where the ratio stands for slower kubelets, side by side in one run.
#
# The CA signs on the controller (the lab's copy of the cluster CA), the way an operator with
# the CA on the controller runs it. Prints a Markdown table (the figures docs/rotation.md quotes).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$PWD/.build/collections PYTHONPATH=$PWD/.build/collections
export ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1
PY=${PYTHON:-python}
NODES=${1:-cp1,kubeadm1,k3s1,nocrypto1}
RUNS=${ROTATE_BENCH_RUNS:-1}
PREFIX=${ROTATE_BENCH_PREFIX:-mol-rotate-bench}
KUBE_BIN=$($PY -c "import sys; sys.path.insert(0, 'tests/lab'); from lablib import kube; print(kube.BIN_DIR)")
WORK=$(mktemp -d /var/tmp/kubecerts-rotate-bench.XXXXXX)
DIR=$WORK/lab

cleanup() {
    if [[ -z ${ROTATE_BENCH_KEEP:-} ]]; then
        $PY tests/lab/labctl.py down --lab-dir "$DIR" --prefix "$PREFIX" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    else
        echo "lab kept: $DIR (prefix $PREFIX)" >&2
    fi
}
trap cleanup EXIT

$PY tests/lab/labctl.py up --nodes "$NODES" --lab-dir "$DIR" --prefix "$PREFIX" >&2
# Warm the SSH control sockets as an operator's earlier tasks would have.
ansible -i "$DIR/inventory.yml" all -m ansible.builtin.ping -o >/dev/null
DELAYS=${ROTATE_BENCH_STARTUP_DELAYS:-0 10 30}
dropin='/etc/systemd/system/{{ lab_paths.service }}.service.d'
set_startup_delay() {
    ansible -i "$DIR/inventory.yml" all -o -m ansible.builtin.file -a "path=$dropin state=directory mode=0755" >/dev/null
    ansible -i "$DIR/inventory.yml" all -o -m ansible.builtin.copy -a "{\"dest\": \"$dropin/90-bench-startup-delay.conf\",
        \"content\": \"[Service]\\nExecStartPre=/bin/sleep $1\\n\", \"mode\": \"0644\"}" >/dev/null
    ansible -i "$DIR/inventory.yml" all -o -m ansible.builtin.systemd_service -a daemon_reload=true >/dev/null
}

echo "| run | nodes | startup delay (s) | wall (s) | sum restart-to-Ready (s) | ratio | rolling phase (s) | per-node overhead in the rolling phase (s) | (wall - sum) / nodes (s) | minimal rolling restart, wall (s) | ours - minimal, per node (s) | load avg |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for DELAY in $DELAYS; do
    set_startup_delay "$DELAY"
    for run in $(seq 1 "$RUNS"); do
        rm -rf "$WORK/report"
        load=$(cut -d' ' -f1 /proc/loadavg)
        start=$(date +%s%N)
        ansible-playbook -i "$DIR/inventory.yml" playbooks/rotate.yml \
            -e rotate_all=true -e rotate_serial=1 -e "rotate_report_dir=$WORK/report" \
            -e kubecerts_ca_host=localhost -e "kubecerts_ca_cert=$DIR/ca/ca.crt" -e "kubecerts_ca_key=$DIR/ca/ca.key" \
            > "$WORK/rotate-$DELAY-$run.log" 2>&1 || { tail -30 "$WORK/rotate-$DELAY-$run.log" >&2; exit 1; }
        end=$(date +%s%N)
        # The same restarts as an operator would write them without the collection, side by side.
        minimal_start=$(date +%s%N)
        PATH=$KUBE_BIN:$PATH ansible-playbook -i "$DIR/inventory.yml" benchmarks/minimal_restart.yml \
            > "$WORK/minimal-$DELAY-$run.log" 2>&1 || { tail -30 "$WORK/minimal-$DELAY-$run.log" >&2; exit 1; }
        minimal_end=$(date +%s%N)
        $PY - "$WORK/report/summary.json" "$start" "$end" "$run" "$load" "$DELAY" "$minimal_start" "$minimal_end" <<'EOF'
import json, sys
summary = json.load(open(sys.argv[1]))
wall = (int(sys.argv[3]) - int(sys.argv[2])) / 1e9
minimal = (int(sys.argv[8]) - int(sys.argv[7])) / 1e9
rows = summary["nodes"]
floor = sum(float(r["restart_to_ready_seconds"]) for r in rows)
rolling = sum(float(r["seconds"]) for r in rows)
overhead = (rolling - floor) / len(rows)
print(f"| {sys.argv[4]} | {len(rows)} | {sys.argv[6]} | {wall:.1f} | {floor:.1f} | {wall / floor:.2f} | "
      f"{rolling:.1f} | {overhead:.1f} | {(wall - floor) / len(rows):.1f} | {minimal:.1f} | "
      f"{(wall - minimal) / len(rows):.1f} | {sys.argv[5]} |")
for r in rows:
    print(f"|  | {r['node']} | | | {float(r['restart_to_ready_seconds']):.1f} | | {float(r['seconds']):.1f} | | |",
          file=sys.stderr)
EOF
    done
done
