# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller half of kubeconfig_ca and ca_bundle: CA input judged with ``cryptography``.

Nodes may lack ``cryptography``, so "is this really a CA, and not a leaf or a key?" is
answered here, in the action plugins, before anything is sent to a node; the node module
(``node/bundle.py``) then works on checked PEM with the standard library. What a node
sends back is described here too, so results and diffs show subjects and expiry, never PEM.
"""
from __future__ import annotations

import typing as t

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import InputFileError
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import x509 as core
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import bundle


class CaInfo(t.NamedTuple):
    """A checked CA certificate, as sent to the node and described in results."""
    fingerprint: str
    subject: str
    not_after: str
    pem: str


def check_ca_input(data: bytes, source: str) -> list[CaInfo]:
    """Parses CA input given by the operator and refuses anything that is not a CA.

    Refused, each with a one-line InputFileError naming ``source``: non-PEM data, a
    private key, any other PEM block, a certificate that does not parse, a certificate
    without basicConstraints CA:TRUE, and an input without any certificate.
    Duplicates are dropped; order is kept.
    """
    if not core.HAS_CRYPTOGRAPHY:
        raise InputFileError(source, "cannot be checked: the Python cryptography library is missing "
                                     "on the controller")
    entries = bundle.parse_bundle(data, source)
    if not entries:
        raise InputFileError(source, "is an empty CA bundle: no certificate given")
    checked: list[CaInfo] = []
    for index, entry in enumerate(bundle.dedupe(entries), start=1):
        cert = core.load_certificate(entry.pem, f"{source} certificate #{index}")
        subject = core.name_string(cert.subject)
        if not core.is_ca(cert):
            raise InputFileError(source, f"certificate #{index} ({subject}) is not a CA certificate "
                                         "(basicConstraints CA:TRUE is missing)")
        checked.append(CaInfo(entry.fingerprint, subject, core.iso(core.not_after(cert)),
                              core.cert_pem(cert)))
    return checked


def describe_pems(pems: t.Mapping[str, str]) -> dict[str, dict[str, t.Any]]:
    """{fingerprint: {subject, not_after, is_ca}} for certificates a node sent back.
    Certificates that do not parse are described as such instead of failing the task."""
    described: dict[str, dict[str, t.Any]] = {}
    for fingerprint, text in pems.items():
        try:
            cert = core.load_certificate(text.encode("ascii"), fingerprint)
            described[fingerprint] = {"subject": core.name_string(cert.subject),
                                      "not_after": core.iso(core.not_after(cert)),
                                      "is_ca": core.is_ca(cert)}
        except Exception:  # a corrupt certificate in an existing bundle is reported, not fatal
            described[fingerprint] = {"subject": "(unparseable certificate)", "not_after": None, "is_ca": None}
    return described


def describe_list(fps: t.Sequence[str], known: t.Mapping[str, t.Mapping[str, t.Any]]) -> list[dict[str, t.Any]]:
    return [{"fingerprint": fp, "subject": known.get(fp, {}).get("subject"),
             "not_after": known.get(fp, {}).get("not_after")} for fp in fps]


def diff_text(fps: t.Sequence[str], known: t.Mapping[str, t.Mapping[str, t.Any]]) -> str:
    """One line per CA: what a reviewer needs to recognise it, never PEM."""
    lines = []
    for fp in fps:
        info = known.get(fp, {})
        lines.append(f"{fp}  {info.get('subject') or '?'}  (not after {info.get('not_after') or '?'})")
    return "".join(line + "\n" for line in lines)
