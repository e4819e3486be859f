# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # The CA input and state options of kubeconfig_ca and ca_bundle: one meaning for both.
    DOCUMENTATION = r"""
options:
  ca_content:
    description:
      - One or more PEM CA certificates.
      - Each must be a CA certificate (basicConstraints C(CA:TRUE)). A leaf certificate, a private key,
        any other PEM block or an input without a certificate is refused before anything is changed.
      - Duplicates are ignored; the order is kept.
      - Mutually exclusive with O(ca_path); one of them is required.
    type: str
  ca_path:
    description:
      - A PEM file of one or more CA certificates B(on the managed node), with the same rules as O(ca_content).
      - To use a file on the controller, pass its content in O(ca_content) instead, for example with the
        C(ansible.builtin.file) lookup.
    type: path
  state:
    description:
      - V(present) makes sure the bundle contains these CAs, appending the missing ones at the end and
        keeping the existing ones in their order.
      - V(exact) makes the bundle exactly these CAs, in the given order.
      - V(absent) removes these CAs. It refuses to leave an empty bundle.
      - A bundle is compared by SHA-256 fingerprints; duplicate certificates are dropped when the bundle is written.
    type: str
    choices: [present, exact, absent]
    default: present
  backup:
    description:
      - Keep a timestamped copy (C(<file>.<timestamp>.kubecerts-backup)) of every file before it is replaced.
    type: bool
    default: true
requirements:
  - On the controller, the Python C(cryptography) library, to check that the input is made of CA certificates.
notes:
  - The CA input is checked on the controller by the action plugin; the part that runs on the node needs only the
    Python standard library, so nodes without C(cryptography) are handled too.
  - Files are replaced atomically (a temporary file in the same directory, then a rename), keeping their mode and
    owner. A symbolic link is followed and its target is updated.
"""
