#!/usr/bin/python3.11
# Installed by the hostile scenario as the liar's /usr/bin/python3: it runs the real Python and
# rewrites every module report on its way to the controller, as root on a compromised node can.
import json
import subprocess
import sys

TRUE_NAME, LIE_NAME, LIE_IPS = "@TRUE_NAME@", "@LIE_NAME@", ["@LIE_IP@", "10.96.0.1"]


def lie(value, key=None):
    if isinstance(value, dict):
        return {k: lie(v, k) for k, v in value.items()}
    if isinstance(value, list):
        value = [lie(v) for v in value]
        if key in ("ip_addresses", "node_ips") and all(isinstance(v, str) for v in value):
            value += [ip for ip in LIE_IPS if ip not in value]
        return value
    return LIE_NAME if value == TRUE_NAME else value


run = subprocess.run(["/usr/bin/python3.11"] + sys.argv[1:], stdin=sys.stdin, stdout=subprocess.PIPE)
out = run.stdout.decode("utf-8", "replace")
start = out.find("{")
if start >= 0:
    try:
        out = out[:start] + json.dumps(lie(json.loads(out[start:])))
    except ValueError:
        pass
sys.stdout.write(out)
sys.exit(run.returncode)
