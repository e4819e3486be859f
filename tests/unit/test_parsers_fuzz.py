"""Property tests: random and mutated PEM, DER and YAML fed to every cert_info parser.
No exception may escape; bad input must end up as data (an error field or a finding)."""
from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import tempfile

import pkifactory
import yaml
from certinfo_fixtures import NODE, NodeTree, gather
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import gather as _gather
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import facts
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common import redact
from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset
from ansible_collections.kubecerts.kubelet.plugins.module_utils.crypto import inspection

# CERTINFO_FUZZ_SCALE=20 runs twenty times the examples, for a longer hunt than the unit suite allows.
_SCALE = int(os.environ.get("CERTINFO_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=150 * _SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40 * _SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_CA = pkifactory.make_ca()
_CERT, _KEY = pkifactory.node_serving(_CA, NODE, ips=["10.0.0.5"])
SAMPLES = [
    pkifactory.cert_pem(_CERT),
    pkifactory.cert_der(_CERT),
    pkifactory.key_pem(_KEY),
    pkifactory.cert_pem(_CERT) + pkifactory.key_pem(_KEY),
    pkifactory.cert_pem(_CA.cert) + pkifactory.cert_pem(_CERT),
]
KUBECONFIG = yaml.safe_dump({
    "apiVersion": "v1", "kind": "Config", "current-context": "c",
    "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1",
                                           "certificate-authority-data":
                                               base64.b64encode(pkifactory.cert_pem(_CA.cert)).decode()}}],
    "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    "users": [{"name": "u", "user": {"client-certificate": "/nonexistent/c.pem",
                                     "client-key-data": base64.b64encode(pkifactory.key_pem(_KEY)).decode()}}],
})


@st.composite
def mutated(draw, samples=tuple(SAMPLES)):
    """A valid sample with a few bytes flipped, inserted, deleted, or the tail cut off."""
    data = bytearray(draw(st.sampled_from(samples)))
    for _step in range(draw(st.integers(0, 6))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip":
            data[position] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 16))]
        else:
            del data[position:]
    return bytes(data)


anything = st.one_of(st.binary(max_size=3000), mutated())


@FUZZ
@given(anything)
def test_classify_never_raises(data):
    entry: dict = {}
    _gather._classify(entry, data)
    assert isinstance(entry["certificates"], list)
    # No private key may travel inside the "certificates" of a file.
    assert not any("PRIVATE KEY" in pem for pem in entry["certificates"])


@FUZZ
@given(anything)
def test_derive_public_keys_never_raises(data):
    keys, errors = _gather.derive_public_keys(data)
    assert isinstance(keys, list) and isinstance(errors, list)


@SLOW
@given(mutated(samples=(pkifactory.key_pem(_KEY),)))
def test_openssl_derivation_never_raises(data):
    original = _gather._load_cryptography
    _gather._load_cryptography = lambda: None
    try:
        keys, errors = _gather.derive_public_keys(data)
    finally:
        _gather._load_cryptography = original
    assert isinstance(keys, list) and isinstance(errors, list)


@FUZZ
@given(anything)
def test_private_key_recognisers_never_raise(data):
    assert isinstance(redact.looks_like_private_key_der(data), bool)
    assert isinstance(redact.contains_private_key(data), bool)
    assert isinstance(redact.looks_like_certificate_der(data), bool)


yaml_text = st.one_of(
    st.text(max_size=800),
    st.text(alphabet=" \n\t-:#'\"|>[]{},abc123", max_size=400),
    mutated(samples=(KUBECONFIG.encode(),)).map(lambda b: b.decode("utf-8", "replace")),
)


@FUZZ
@given(yaml_text)
def test_yaml_subset_reader_raises_only_value_error(text):
    try:
        yaml_subset.load(text, use_pyyaml=False)
    except ValueError:
        pass


@FUZZ
@given(yaml_text)
def test_yaml_reader_with_pyyaml_raises_only_value_error(text):
    try:
        yaml_subset.load(text)
    except ValueError:
        pass


@FUZZ
@given(yaml_text)
def test_redaction_never_raises_and_removes_whole_keys(text):
    key_block = pkifactory.key_pem(_KEY).decode()
    redacted = redact.redact_text(text + "\n" + key_block)
    assert "PRIVATE KEY" not in redacted


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(["clusters", "users", "contexts", "name", "cluster",
                                                                "user", "context", "server", "current-context",
                                                                "client-key-data", "certificate-authority",
                                                                "certificate-authority-data", "client-certificate"]),
                                               children, max_size=5)),
    max_leaves=20)


@FUZZ
@given(json_values)
def test_kubeconfig_refs_never_raise(doc):
    refs = _gather.kubeconfig_refs(doc, "/etc/kubernetes/kubelet.conf")
    assert isinstance(refs["clusters"], list) and isinstance(refs["users"], list)


@FUZZ
@given(st.text(max_size=600))
def test_flag_readers_never_raise(text):
    facts.flags_from_tokens(text.split())
    facts._env_file_tokens(text)
    facts._unit_tokens(text)
    facts._yaml_config_flags(text)
    facts.interface_addresses(text)


# ---- the whole pipeline: gather on disk, then judge on the controller ---------------------------------
_TREE_DIR = tempfile.mkdtemp(prefix="certinfo-fuzz-")
atexit.register(shutil.rmtree, _TREE_DIR, True)
_TREE = NodeTree(_TREE_DIR, _CA)


def _run_pipeline(path: str, data: bytes) -> dict:
    with open(path, "wb") as handle:
        handle.write(data)
    result = inspection.inspect(gather(_TREE.params()), node_ips=["10.0.0.5"], node_dns_names=[NODE])
    json.dumps(result)     # the result must serialise for Ansible
    return result


@SLOW
@given(anything, st.sampled_from(["serving_cert", "serving_key", "ca_cert", "client_dated"]))
def test_pipeline_survives_any_certificate_file(data, which):
    path = getattr(_TREE, which)
    original = open(path, "rb").read()
    try:
        result = _run_pipeline(path, data)
    finally:
        with open(path, "wb") as handle:
            handle.write(original)
    # No message check here: the file's bytes never reach a message (the messages quote fixed
    # text and paths), so a line break could not get in. Names can: see the next test.
    assert isinstance(result["findings"], list)


# Every character str.splitlines() breaks a line on, which a certificate's names may hold.
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_name_part = st.text(alphabet="ab-.:" + _LINE_BREAKS, max_size=8)     # CN: 64 bytes at most
hostile_names = st.tuples(_name_part, st.sampled_from(_LINE_BREAKS), _name_part).map("".join)


@SLOW
@given(hostile_names, hostile_names)
def test_messages_stay_one_line_whatever_the_names(node_name, issuer_name):
    # A client certificate for a node whose name holds line breaks, from an issuer whose name does:
    # the node name (taken from the certificate) and the issuer are quoted in the findings.
    issuer = pkifactory.CA(*pkifactory.make_leaf(None, issuer_name, orgs=()))
    original = open(_TREE.client_dated, "rb").read()
    cert, key = pkifactory.node_client(issuer, node_name)
    try:
        result = _run_pipeline(_TREE.client_dated, pkifactory.cert_pem(cert) + pkifactory.key_pem(key))
    finally:
        with open(_TREE.client_dated, "wb") as handle:
            handle.write(original)
    assert {"untrusted_issuer", "wrong_identity"} <= {item["code"] for item in result["findings"]}
    for item in result["findings"]:
        assert item["message"] and item["message"].splitlines() == [item["message"]], item["message"]


@SLOW
@given(st.one_of(yaml_text.map(lambda s: s.encode("utf-8", "replace")), mutated(samples=(KUBECONFIG.encode(),))))
def test_pipeline_survives_any_kubeconfig(data):
    original = open(_TREE.kubeconfig, "rb").read()
    try:
        result = _run_pipeline(_TREE.kubeconfig, data)
    finally:
        with open(_TREE.kubeconfig, "wb") as handle:
            handle.write(original)
    assert isinstance(result["kubeconfigs"], list)


@SLOW
@given(json_values)
def test_pipeline_survives_any_kubeconfig_structure(doc):
    assume(doc is not None)
    original = open(_TREE.kubeconfig, "rb").read()
    try:
        _run_pipeline(_TREE.kubeconfig, json.dumps(doc).encode())
    finally:
        with open(_TREE.kubeconfig, "wb") as handle:
            handle.write(original)


def test_fuzz_tree_is_healthy_to_start_with():
    assert inspection.inspect(gather(_TREE.params()), node_ips=["10.0.0.5"],
                              node_dns_names=[NODE])["findings"] == []
    assert os.path.isdir(_TREE_DIR)


# ---- redaction in every YAML style -----------------------------------------------------------------
_SECRET_NAMES = ["token", "value", "client-key-data", "password", "secret"]
config_docs = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6),
              st.text(alphabet="ab c:,[]{}#'\"-&*!|>", max_size=12)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["name", "user", "env", "exec", "server", "users"] + _SECRET_NAMES),
                        children, max_size=4)),
    max_leaves=15)


def _unredacted_secrets(value) -> list:
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found += [key for key, child in item.items()
                      if key in redact.SECRET_KEYS and child not in (redact.REDACTED, None)]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


@FUZZ
@given(config_docs, st.sampled_from(["block", "flow", "json", "json-indented"]))
def test_redaction_leaves_no_secret_value_in_any_style(doc, style):
    if style == "json":
        text = json.dumps(doc)
    elif style == "json-indented":
        text = json.dumps(doc, indent=2)
    else:
        text = yaml.safe_dump(doc, default_flow_style=style == "flow", width=40)
    redacted = yaml.safe_load(redact.redact_text(text))
    assert _unredacted_secrets(redacted) == []
