#!/usr/bin/env bash
# `make ee`: builds the kubecerts.kubelet execution environment with ansible-builder and
# podman, with no registry: the base image is built locally (tools/ee_base_image.py,
# debootstrap + podman import), the collection comes from its tarball (tools/build.sh).
# Cached: the image is tagged with a hash of every input (base image recipe, ee/, the
# collection's files and dependency lists, ansible-builder's version); when that tag exists,
# nothing is built. Prints the image tag last; localhost/kubecerts-ee:latest points at it.
# See docs/awx.md.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
repository=localhost/kubecerts-ee
# Two builds at once must not race for the same tags.
exec 9>/var/tmp/kubecerts-ee-build.lock
flock 9

base=$(python tools/ee_base_image.py build)
tools/build.sh >/dev/null
tarball=$(ls -t .build/dist/kubecerts-kubelet-*.tar.gz | head -1)
mkdir -p .build/ee
cp "$tarball" .build/ee/kubecerts-kubelet.tar.gz

# The tarball's bytes change with every build (file times); its manifests list every file's
# checksum and do not.
key=$({
    echo "$base"
    ansible-builder --version
    for f in ee/* requirements.txt bindep.txt meta/execution-environment.yml; do
        echo "== $f"
        cat "$f"
    done
    tar -xzOf .build/ee/kubecerts-kubelet.tar.gz MANIFEST.json FILES.json
} | sha256sum | cut -c1-16)
tag=$repository:$key

if podman image exists "$tag"; then
    podman tag "$tag" "$repository:latest"
    echo "ee: $tag is cached ($((SECONDS - started)) s)" >&2
    echo "$tag"
    exit 0
fi

# pip inside the build reaches PyPI the way this machine does: its pip configuration (and the
# CA bundle it names) is mounted into every build step, never copied into a layer.
pipconf=$(mktemp -d /var/tmp/kubecerts-ee-pip.XXXXXX)
trap 'rm -rf "$pipconf"' EXIT
python tools/ee_base_image.py pipconf "$pipconf" /etc/xdg/pip

log=.build/ee/build.log
echo "ee: building $tag from $base (log: $log)" >&2
# The two --ulimit flags: without them runc cannot start a container on these machines
# (docs/lab.md).
if ! ansible-builder build --file ee/execution-environment.yml --context .build/ee/context \
        --container-runtime podman --build-arg "EE_BASE_IMAGE=$base" \
        --tag "$tag" --tag "$repository:latest" --verbosity 2 \
        --extra-build-cli-args "--ulimit nofile=10000:10000 --ulimit nproc=5000:5000 --volume $pipconf:/etc/xdg/pip:ro" \
        >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "ee: ansible-builder build failed; the whole log is $log" >&2
    exit 1
fi
echo "ee: built $tag in $((SECONDS - started)) s ($(podman image inspect "$tag" --format '{{.Size}}') bytes)" >&2
# Earlier builds only take disk space (most layers are shared); one in use stays.
podman images --format '{{.Repository}}:{{.Tag}}' "$repository" | grep -v -x -e "$tag" -e "$repository:latest" |
    while read -r old; do podman rmi "$old" >/dev/null 2>&1 || true; done
echo "$tag"
