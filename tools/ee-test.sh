#!/usr/bin/env bash
# The `ee` stage of `make test`: builds the execution environment (tools/ee-build.sh, cached),
# brings up a small real lab (cp1 + kubeadm1 + hand1), breaks it, then runs the audit and
# rotate playbooks twice with the same inventory: with ansible-playbook on this machine, and
# inside the EE with ansible-runner (--process-isolation with podman, as AWX runs a job), and
# requires the same findings and the same rotation outcome (tools/ee_compare.py).
#
# As an AWX job gets them: the project holds a playbook importing the collection's; the SSH key
# reaches ssh-agent in the container through env/ssh_key (a machine credential); the API
# kubeconfig is a file in the private data directory, named by an extra variable (a custom
# credential); the reports go to /runner/reports (a shared directory under AWX).
#
# EE_LAB_PREFIX / EE_LAB_DIR choose the lab (default kce, .build/lab-ee); EE_KEEP_LAB=1 leaves
# it up afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${EE_LAB_PREFIX:-kce}
lab=${EE_LAB_DIR:-$PWD/.build/lab-ee}
work=$(mktemp -d /var/tmp/kubecerts-ee-test.XXXXXX)
pdd=$work/ee
started=$SECONDS
say() { echo "ee-test: $* ($((SECONDS - started)) s)"; }
cleanup() {
    [[ ${EE_KEEP_LAB:-0} == 1 ]] || python tests/lab/labctl.py down --lab-dir "$lab" >/dev/null 2>&1 || true
    if [[ ${failed:-1} == 0 ]]; then rm -rf "$work"; else echo "ee-test: logs and reports kept in $work"; fi
}
trap cleanup EXIT

image=$(tools/ee-build.sh | tail -1)
say "execution environment $image"
tests/lab/kube/build.sh >/dev/null
python tests/lab/labctl.py up --workers 2 --lab-dir "$lab" --prefix "$prefix" >/dev/null
say "lab $prefix up"
python tests/lab/labctl.py break --lab-dir "$lab" --node kubeadm1 --scenario expiring >/dev/null
python tests/lab/labctl.py break --lab-dir "$lab" --node hand1 --scenario no-ip-san >/dev/null

# The runner's private data directory, laid out as AWX lays out a job's.
mkdir -p "$pdd"/{project,inventory,env,reports} "$work/plain"
cp "$lab/inventory.yml" "$pdd/inventory/hosts.yml"
cp "$lab/ssh/id_ed25519" "$pdd/env/ssh_key"
cp "$lab/admin.kubeconfig" "$pdd/kubeconfig"
for playbook in audit rotate; do
    printf -- '---\n- name: kubecerts.kubelet.%s\n  ansible.builtin.import_playbook: kubecerts.kubelet.%s\n' \
        "$playbook" "$playbook" >"$pdd/project/$playbook.yml"
done
printf '{"ANSIBLE_NOCOLOR": "1"}\n' >"$pdd/env/envvars"

# ansible-playbook and ansible-runner exit non-zero on findings or refusals: both runs must
# agree on the status too, so it is recorded, not fatal.
plain() { # NAME PLAYBOOK [ansible-playbook options]
    local name=$1 playbook=$2; shift 2
    local rc=0
    ansible-playbook -i "$lab/inventory.yml" "kubecerts.kubelet.$playbook" \
        -e "audit_report_dir=$work/plain/$name" -e "rotate_report_dir=$work/plain/$name" "$@" \
        >"$work/plain/$name.log" 2>&1 || rc=$?
    echo "$rc" >"$work/plain/$name.rc"
    say "plain $name: rc $rc"
}
in_ee() { # NAME PLAYBOOK [ansible-playbook options]
    local name=$1 playbook=$2 rc=0
    # ansible-runner keeps --cmdline in env/cmdline for every later run of the directory, as
    # AWX writes it per job: written here for this run only.
    rm -f "$pdd/env/cmdline"
    (($# > 2)) && echo "${*:3}" >"$pdd/env/cmdline"
    printf '{"audit_report_dir": "/runner/reports/%s", "rotate_report_dir": "/runner/reports/%s", "kubecerts_kubeconfig": "/runner/kubeconfig"}\n' \
        "$name" "$name" >"$pdd/env/extravars"
    # --user=0: the image's user 1000 cannot read the private data directory that root's
    # rootful podman mounts (AWX's rootless podman maps the user instead).
    ansible-runner run "$pdd" --playbook "$playbook.yml" --ident "$name" \
        --process-isolation --process-isolation-executable podman --container-image "$image" \
        --container-option=--user=0 --container-option=--ulimit=nofile=10000:10000 \
        --container-option=--ulimit=nproc=5000:5000 >"$work/$name.ee.log" 2>&1 || rc=$?
    grep -q '"podman", "run"' "$pdd/artifacts/$name/command" || { echo "ee-test: $name did not run in a container" >&2; exit 1; }
    echo "$rc" >"$pdd/reports/$name.rc"
    say "EE $name: rc $rc"
}
same_rc() {
    local a b
    a=$(cat "$work/plain/$1.rc") b=$(cat "$pdd/reports/$1.rc")
    [[ $a == "$b" ]] || { echo "ee-test: $1: ansible-playbook rc $a, ansible-runner in the EE rc $b" >&2; exit 1; }
}

plain audit1 audit
in_ee audit1 audit
same_rc audit1
python tools/ee_compare.py audit "$work/plain/audit1/report.json" "$pdd/reports/audit1/report.json" --min-findings 2

# Rotation: both plan it (check mode, as an AWX "Check" job) on the same broken lab and must
# plan the same; then the EE rotates for real, and both audit what it left.
plain rotate-check rotate --check
in_ee rotate-check rotate --check
same_rc rotate-check
python tools/ee_compare.py rotate "$work/plain/rotate-check/summary.json" "$pdd/reports/rotate-check/summary.json"
in_ee rotate rotate
python tools/ee_compare.py rotated "$pdd/reports/rotate/summary.json"
plain audit2 audit
in_ee audit2 audit
same_rc audit2
python tools/ee_compare.py audit "$work/plain/audit2/report.json" "$pdd/reports/audit2/report.json" \
    --fewer-than "$work/plain/audit1/report.json"
failed=0
say "audit and rotate in the execution environment match ansible-playbook"
