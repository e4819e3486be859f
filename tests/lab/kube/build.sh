#!/usr/bin/env bash
# Builds the lab's real Kubernetes binaries from Go modules and caches them:
#   kube-apiserver, kube-controller-manager, kubelet, kubectl  (k8s.io/kubernetes $KUBE_RELEASE)
#   etcd, etcdctl                                              (go.etcd.io/etcd $ETCD_RELEASE)
#   fakecri                                                    (tests/lab/kube/fakecri)
# into ${KUBECERTS_LAB_CACHE:-$HOME/.cache/kubecerts-lab}/kube/$KUBE_RELEASE/bin/.
#
# Only the Go toolchain and the Go module proxy are used: no container registry, no prebuilt
# binary. k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the staging modules
# k8s.io/api, k8s.io/client-go, ... with ./staging/src/...), so a throwaway module in the cache
# requires it and replaces every staging module with its published v0.<minor>.<patch> tag.
# etcd is built the same way from a two-line main calling etcdmain.Main.
#
# A stamp records the releases, the Go version and a hash of this script and the fakecri
# sources. When it matches and the binaries are there, the script does nothing (it does not
# even run go). KUBE_RELEASE=v1.x.y builds another release side by side. docs/lab-real-build.md
# tells the measured times and sizes.
set -euo pipefail

KUBE_RELEASE=${KUBE_RELEASE:-v1.37.2}
ETCD_RELEASE=${ETCD_RELEASE:-v3.6.17}
# The go directive of the pinned release's go.mod, for the message where go is missing; the
# Go version is checked against the go.mod of the release being built.
GO_MIN=${GO_MIN:-1.26}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${KUBECERTS_LAB_CACHE:-$HOME/.cache/kubecerts-lab}
top=$cache_root/kube/$KUBE_RELEASE
bin=$top/bin
stamp=$top/stamp
kube_cmds=(kube-apiserver kube-controller-manager kubelet kubectl)
all_bins=("${kube_cmds[@]}" etcd etcdctl fakecri)
start=$SECONDS

say() { printf 'build: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

if [[ ! $KUBE_RELEASE =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
    die "KUBE_RELEASE must be an exact release like v1.37.2, not '$KUBE_RELEASE'"
fi
kube_minor=${BASH_REMATCH[1]}
staging_version=v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}

if ! gobin=$(command -v go); then
    say "Go $GO_MIN or newer is needed to build the lab's Kubernetes binaries (go not found)" >&2
    exit 1
fi

# The Go version without running go: the toolchain's VERSION file (official and Debian builds
# have one); go itself only where that file is missing.
go_version() {
    local goroot=${GOROOT:-}
    [[ -n $goroot ]] || goroot=$(dirname "$(dirname "$(readlink -f "$gobin")")")
    if [[ -r $goroot/VERSION ]]; then
        head -n1 "$goroot/VERSION"
    else
        "$gobin" env GOVERSION
    fi
}

sources_hash() {
    (cd "$here" && cat build.sh fakecri/main.go fakecri/go.mod fakecri/go.sum) | sha256sum | cut -d' ' -f1
}

want_stamp() {
    printf 'kubernetes %s\netcd %s\ngo %s\nsources %s\n' \
        "$KUBE_RELEASE" "$ETCD_RELEASE" "$(go_version)" "$(sources_hash)"
}

is_built() {
    local name
    [[ -f $stamp ]] || return 1
    for name in "${all_bins[@]}"; do
        [[ -x $bin/$name ]] || return 1
    done
    [[ "$(cat "$stamp")" == "$(want_stamp)" ]]
}

if is_built; then
    say "cached: Kubernetes $KUBE_RELEASE, etcd $ETCD_RELEASE and fakecri in $bin ($((SECONDS - start)) s)"
    exit 0
fi

# Nothing built or downloaded may land in the repository.
repo_top=$(cd "$here/../../.." && pwd -P)
case "$(realpath -m "$top")/" in
    "$repo_top"/*) die "KUBECERTS_LAB_CACHE ($cache_root) is inside the repository; put it elsewhere" ;;
esac

mkdir -p "$top"
exec 9>"$top/.lock"
if ! flock -n 9; then
    say "another build of $KUBE_RELEASE is running; waiting for it"
    flock 9
    if is_built; then
        say "cached: Kubernetes $KUBE_RELEASE, etcd $ETCD_RELEASE and fakecri in $bin ($((SECONDS - start)) s)"
        exit 0
    fi
fi

export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0
have_go=$("$gobin" env GOVERSION)

# version_at_least HAVE WANT: dotted numeric versions, "go" prefixes ignored.
version_at_least() {
    local have=${1#go} want=${2#go}
    [[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" == "$want" ]]
}

# The stamp as of now: a source edited while the build runs makes the next run build again.
new_stamp=$(want_stamp)
rm -f "$stamp"
mkdir -p "$bin" "$top/src/kube" "$top/src/etcd"

# --- Kubernetes -----------------------------------------------------------------------------
say "kubernetes $KUBE_RELEASE: reading its go.mod ($((SECONDS - start)) s)"
json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" <<<"$kube_json" | head -n1; }
if ! kube_json=$("$gobin" mod download -json "k8s.io/kubernetes@$KUBE_RELEASE"); then
    die "the Go module proxy refused k8s.io/kubernetes@$KUBE_RELEASE: $(json_field Error)"
fi
kube_gomod=$(json_field GoMod)
kube_info=$(json_field Info)
[[ -r $kube_gomod ]] || die "no go.mod for k8s.io/kubernetes@$KUBE_RELEASE in the module cache"

kube_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$kube_gomod")
version_at_least "$have_go" "$kube_go" ||
    die "Go $kube_go or newer is needed to build Kubernetes $KUBE_RELEASE (found $have_go)"

mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\1#p' "$kube_gomod")
(( ${#staging[@]} > 0 )) || die "found no staging modules in the go.mod of k8s.io/kubernetes@$KUBE_RELEASE"

{
    printf 'module kubecerts.lab/kubebuild\n\ngo %s\n\n' "$kube_go"
    sed -n '/^godebug /p' "$kube_gomod"
    printf '\nrequire k8s.io/kubernetes %s\n\ntool (\n' "$KUBE_RELEASE"
    for cmd in "${kube_cmds[@]}"; do printf '\tk8s.io/kubernetes/cmd/%s\n' "$cmd"; done
    printf ')\n\nreplace (\n'
    for mod in "${staging[@]}"; do printf '\t%s => %s %s\n' "$mod" "$mod" "$staging_version"; done
    printf ')\n'
} >"$top/src/kube/go.mod"
rm -f "$top/src/kube/go.sum"

say "kubernetes $KUBE_RELEASE: go mod tidy (${#staging[@]} staging modules at $staging_version) ($((SECONDS - start)) s)"
(cd "$top/src/kube" && "$gobin" mod tidy) ||
    die "go mod tidy failed for Kubernetes $KUBE_RELEASE (is every staging module published at $staging_version?)"

# The same version stamps as hack/lib/version.sh, with the release's own date as the build date.
build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$kube_info" 2>/dev/null || true)
[[ -n $build_date ]] || build_date=1970-01-01T00:00:00Z
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_RELEASE -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

for cmd in "${kube_cmds[@]}"; do
    t=$SECONDS
    say "$cmd $KUBE_RELEASE ... ($((SECONDS - start)) s)"
    (cd "$top/src/kube" && "$gobin" build -trimpath -ldflags "$ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv -f "$bin/$cmd.tmp" "$bin/$cmd"
    say "$cmd $KUBE_RELEASE done in $((SECONDS - t)) s ($((SECONDS - start)) s)"
done

# --- etcd -----------------------------------------------------------------------------------
cat >"$top/src/etcd/main.go" <<'GO'
// etcd's server, built from its Go module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
printf 'module kubecerts.lab/etcdbuild\n\ngo %s\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 %s\n\tgo.etcd.io/etcd/etcdctl/v3 %s\n)\n\ntool go.etcd.io/etcd/etcdctl/v3\n' \
    "$kube_go" "$ETCD_RELEASE" "$ETCD_RELEASE" >"$top/src/etcd/go.mod"
rm -f "$top/src/etcd/go.sum"
say "etcd $ETCD_RELEASE: go mod tidy ($((SECONDS - start)) s)"
(cd "$top/src/etcd" && "$gobin" mod tidy) || die "go mod tidy failed for etcd $ETCD_RELEASE"
for cmd in etcd etcdctl; do
    t=$SECONDS
    pkg=.
    [[ $cmd == etcdctl ]] && pkg=go.etcd.io/etcd/etcdctl/v3
    say "$cmd $ETCD_RELEASE ... ($((SECONDS - start)) s)"
    (cd "$top/src/etcd" && "$gobin" build -trimpath -ldflags "-s -w" -o "$bin/$cmd.tmp" "$pkg")
    mv -f "$bin/$cmd.tmp" "$bin/$cmd"
    say "$cmd $ETCD_RELEASE done in $((SECONDS - t)) s ($((SECONDS - start)) s)"
done

# --- fakecri --------------------------------------------------------------------------------
t=$SECONDS
say "fakecri ... ($((SECONDS - start)) s)"
"$gobin" build -C "$here/fakecri" -trimpath -ldflags "-s -w" -o "$bin/fakecri.tmp" .
mv -f "$bin/fakecri.tmp" "$bin/fakecri"
say "fakecri done in $((SECONDS - t)) s ($((SECONDS - start)) s)"

printf '%s\n' "$new_stamp" >"$stamp.tmp"
mv -f "$stamp.tmp" "$stamp"
say "built Kubernetes $KUBE_RELEASE, etcd $ETCD_RELEASE and fakecri with $have_go into $bin in $((SECONDS - start)) s"
