# Every file the certs role may touch, with mode, owner, link target and content hash.
# Used by prepare and converge to prove that bad input and check mode change nothing.
set -o pipefail
{
  find /etc/kubernetes /var/lib/kubelet/pki /var/lib/rancher/k3s/agent /etc/systemd/system \
       /var/lib/kubelet/config.yaml -maxdepth 2 \( -type f -o -type l \) -printf '%p %m %U %l\n' 2>/dev/null || true
  find /etc/kubernetes /var/lib/kubelet/pki /var/lib/rancher/k3s/agent /etc/systemd/system \
       /var/lib/kubelet/config.yaml -maxdepth 2 -type f -exec sha256sum {} + 2>/dev/null || true
} | sort
