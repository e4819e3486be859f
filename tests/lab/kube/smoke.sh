#!/usr/bin/env bash
# Smoke test of the binaries build.sh caches: a real etcd, kube-apiserver,
# kube-controller-manager and kubelet (on the fake CRI) run on this host, all on loopback, in a
# temporary directory. It passes when the kubelet's Node registers and turns Ready.
#
#   tests/lab/kube/smoke.sh            # KUBE_RELEASE=v1.x.y picks another cached release
#   KEEP=1 tests/lab/kube/smoke.sh     # keep the directory (logs, PKI) afterwards
#
# Needs root (the kubelet does), openssl, curl and python3. The kubelet sets six kernel
# sysctls (vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops,
# kernel.keys.root_maxkeys, kernel.keys.root_maxbytes); this script restores them on exit.
# docs/lab-real-build.md tells each setting below and the error that called for it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE_RELEASE=${KUBE_RELEASE:-v1.37.2}
export KUBE_RELEASE
bin=${KUBECERTS_LAB_CACHE:-$HOME/.cache/kubecerts-lab}/kube/$KUBE_RELEASE/bin
node=kubecerts-smoke
start=$SECONDS

say() { printf 'smoke: %s (%s s)\n' "$*" "$((SECONDS - start))"; }

"$here/build.sh"

work=$(mktemp -d /tmp/kubecerts-smoke.XXXXXX)
pids=()
declare -A names=()
sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
declare -A saved=()
for s in "${sysctls[@]}"; do saved[$s]=$(sysctl -n "$s"); done

# alive PID: the process runs (an exited child stays a zombie until waited for; kill -0 would
# still succeed on it).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [[ $state != Z ]]
}

cleanup() {
    local rc=$? pid s i mnt
    # Stop in reverse order, each before the next (the API server hung in shutdown for minutes
    # once etcd went away under it); SIGKILL after 20 s.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill "$pid" 2>/dev/null || continue
        for _ in {1..40}; do
            alive "$pid" || break
            sleep 0.5
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # The kubelet bind-mounts its root directory onto itself (to make it rshared) and mounts a
    # tmpfs for each pod's projected service-account volume: unmount them, deepest first.
    while read -r mnt; do
        umount "$mnt" || true
    done < <(awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    for s in "${sysctls[@]}"; do
        [[ "$(sysctl -n "$s")" == "${saved[$s]}" ]] || sysctl -q -w "$s=${saved[$s]}" || true
    done
    if ((rc != 0)); then
        for log in "$work"/*.log; do
            [[ -f $log ]] || continue
            printf '\n--- last lines of %s\n' "$log"
            tail -n 15 "$log"
        done
    fi
    if [[ ${KEEP:-} == 1 ]]; then
        say "kept $work"
    else
        rm -rf --one-file-system "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
etcd_port=$(free_port) etcd_peer_port=$(free_port) api_port=$(free_port)
kcm_port=$(free_port) kubelet_port=$(free_port) kubelet_healthz_port=$(free_port)

# --- a throwaway CA and the certificates signed by it ---------------------------------------
pki=$work/pki
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kubecerts-smoke-ca \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
# issue NAME SUBJECT EXTENDED-KEY-USAGE [SUBJECT-ALT-NAMES]
issue() {
    local name=$1 subject=$2 eku=$3 san=${4:-}
    openssl req -newkey rsa:2048 -nodes -subj "$subject" \
        -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
    {
        printf 'basicConstraints=critical,CA:FALSE\n'
        printf 'keyUsage=critical,digitalSignature,keyEncipherment\n'
        printf 'extendedKeyUsage=%s\n' "$eku"
        [[ -z $san ]] || printf 'subjectAltName=%s\n' "$san"
    } >"$pki/$name.ext"
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -CAcreateserial -days 2 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
}
issue apiserver /CN=kube-apiserver serverAuth \
    'IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc'
issue apiserver-kubelet-client /O=system:masters/CN=kube-apiserver-kubelet-client clientAuth
issue admin /O=system:masters/CN=kubecerts-smoke-admin clientAuth
issue controller-manager /CN=system:kube-controller-manager clientAuth
issue kubelet-client "/O=system:nodes/CN=system:node:$node" clientAuth
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

kubeconfig() {
    cat >"$work/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smoke
  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key"}
contexts:
- name: smoke
  context: {cluster: smoke, user: $1}
current-context: smoke
EOF
}
kubeconfig admin
kubeconfig controller-manager
kubeconfig kubelet-client
kubectl() { "$bin/kubectl" --kubeconfig "$work/admin.kubeconfig" "$@"; }

# launch NAME COMMAND...: starts COMMAND in the background, its output in $work/NAME.log.
launch() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    names[$!]=$name
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND once a second; fails at once if one of the
# started processes has exited.
wait_for() {
    local what=$1 limit=$2 pid
    shift 2
    local until=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        for pid in "${pids[@]}"; do
            if ! alive "$pid"; then
                say "FAILED: ${names[$pid]} exited before: $what (see its log below)"
                return 1
            fi
        done
        if ((SECONDS >= until)); then
            say "FAILED: $what not within $limit s"
            return 1
        fi
        sleep 1
    done
    say "$what"
}

# --- etcd -----------------------------------------------------------------------------------
launch etcd "$bin/etcd" --name smoke --data-dir "$work/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "smoke=http://127.0.0.1:$etcd_peer_port"
wait_for "etcd is healthy on 127.0.0.1:$etcd_port" 30 \
    "$bin/etcdctl" --endpoints "http://127.0.0.1:$etcd_port" endpoint health

# --- kube-apiserver ------------------------------------------------------------------------
# --endpoint-reconciler-type none: without it the API server refuses to start with its loopback
# advertise address ("cannot use public IP 127.0.0.1 with endpoint reconciler: ... may not be
# in the loopback range"). There is then no default/kubernetes Endpoints, which nothing here needs.
launch kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --endpoint-reconciler-type none \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction
wait_for "kube-apiserver is ready on 127.0.0.1:$api_port" 90 kubectl get --raw /readyz

# --- kube-controller-manager ---------------------------------------------------------------
launch kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$work/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$work/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$work/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
    --use-service-account-credentials
wait_for "kube-controller-manager is healthy on 127.0.0.1:$kcm_port" 60 \
    curl -fsk "https://127.0.0.1:$kcm_port/healthz"

# --- the fake CRI and the kubelet ----------------------------------------------------------
launch fakecri "$bin/fakecri" --listen "$work/fakecri/fakecri.sock" --cgroup-driver cgroupfs
wait_for "fakecri is serving on $work/fakecri/fakecri.sock" 10 test -S "$work/fakecri/fakecri.sock"

kubepods_before=no
[[ ! -e /sys/fs/cgroup/cpu/kubepods ]] || kubepods_before=yes
mkdir -p "$work/kubelet" "$work/pod-logs" "$work/volume-plugins"
cat >"$work/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$work/fakecri/fakecri.sock
address: 127.0.0.1
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz_port
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
podLogsDir: $work/pod-logs
volumePluginDir: $work/volume-plugins
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
localStorageCapacityIsolation: false
evictionHard: {memory.available: "0%", nodefs.available: "0%", imagefs.available: "0%", nodefs.inodesFree: "0%"}
EOF
launch kubelet "$bin/kubelet" --config "$work/kubelet-config.yaml" --kubeconfig "$work/kubelet-client.kubeconfig" \
    --root-dir "$work/kubelet" --hostname-override "$node"

node_ready() {
    [[ "$(kubectl get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
wait_for "node $node registered" 60 kubectl get node "$node"
wait_for "node $node is Ready" 90 node_ready
kubectl get nodes -o wide
# A pod bound to the node straight away (there is no scheduler): the kubelet runs it through
# the fake CRI, which only pretends.
pod_created() {
    kubectl apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: smoke, namespace: default}
spec:
  nodeName: $node
  containers: [{name: pause, image: registry.invalid/pause:1}]
EOF
}
pod_running() { [[ "$(kubectl get pod smoke -o jsonpath='{.status.phase}')" == Running ]]; }
wait_for "pod smoke created (the default ServiceAccount exists)" 60 pod_created
wait_for "pod smoke is Running on the fake CRI" 60 pod_running
curl -fsS "http://127.0.0.1:$kubelet_healthz_port/healthz" >/dev/null && say "kubelet healthz answers on 127.0.0.1:$kubelet_healthz_port"
"$bin/kubelet" --version
if [[ $kubepods_before == no && -e /sys/fs/cgroup/cpu/kubepods ]]; then
    say "FAILED: the kubelet created cgroups under /sys/fs/cgroup/*/kubepods"
    exit 1
fi
say "passed"
