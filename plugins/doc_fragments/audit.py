# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Options shared by the controller-side audit plugins (kubelet_probe, audit_report).
    DOCUMENTATION = r"""
options:
  ca_cert:
    description:
      - Path, on the controller, to the cluster CA certificate (a PEM bundle or a DER file).
      - Served certificates must chain to one of its certificates; otherwise they get a C(served_untrusted) finding.
      - When not set, the trust of served certificates is not judged; names and staleness still are.
    type: path
  probe_timeout:
    description:
      - Seconds allowed for each TCP connect and each TLS handshake.
      - A probe that runs out of time is a C(probe_failed) finding, never an error of the task.
    type: float
    default: 5
  probe_workers:
    description:
      - How many endpoints are probed at the same time (threads on the controller).
    type: int
    default: 32
notes:
  - The probes run on the controller and open TLS connections from it to the endpoints, the way the API server
    and C(kubectl) do. They send no client certificate and no request; they only read what the server presents
    in the handshake.
  - "Problems are worded the way Go clients print them (for example
    C(x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs)), so that the
    finding can be matched with the error an operator saw."
"""
