# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.html in a real browser: headless Chromium driven over the DevTools protocol.

Checks that the table rows and the timeline render, that sorting and filtering work, that
the page makes no network request and logs no console error, and saves a screenshot under
test-output/."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import typing as t
import urllib.request

import pytest

import pkifactory
from audit_samples import node_result

from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit import report as _report
from ansible_collections.kubecerts.kubelet.plugins.plugin_utils.audit.report import HostInput

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = os.path.join(ROOT, "test-output")
websocket = pytest.importorskip("websocket")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")


class DevTools:
    """A minimal DevTools protocol client for one page target."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, t.Any]] = []

    def call(self, method: str, **params: t.Any) -> dict[str, t.Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 20) -> dict[str, t.Any]:
        deadline = time.monotonic() + timeout
        seen = next((e for e in self.events if e.get("method") == method), None)
        while seen is None:
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            message = json.loads(self.ws.recv())
            self.events.append(message)
            if message.get("method") == method:
                seen = message
        return seen

    def evaluate(self, expression: str) -> t.Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')}")
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> str:
    ca = pkifactory.make_ca("kubernetes")
    short = pkifactory.make_ca("short-lived", days=200)
    expiring = pkifactory.node_client(ca, "kubeadm1", not_before=pkifactory.NOW - 350 * pkifactory.DAY, days=365)
    expired = pkifactory.node_client(ca, "k3s1", not_before=pkifactory.NOW - 400 * pkifactory.DAY, days=365)
    client_path = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    nodes = [
        node_result("cp1", ca),
        node_result("kubeadm1", ca, client=expiring, findings=[
            {"code": "expiring_soon", "severity": "warning", "path": client_path,
             "message": "client certificate expires in 14 days; renew it"}]),
        node_result("hand1", short),
        node_result("k3s1", ca, client=expired, findings=[
            {"code": "expired", "severity": "critical", "path": client_path, "message": "client certificate expired"}]),
    ]
    hosts = [HostInput(n.name, "127.0.0.1", 1, False, n.result) for n in nodes]
    hosts.append(HostInput("talos1", "127.0.0.1", 1, True, None))
    report = _report.build_report(hosts, probe_kubelets=False, probe_apiservers=False)
    directory = str(tmp_path_factory.mktemp("html"))
    _report.write_reports(report, directory, formats=["html"])
    return os.path.join(directory, "report.html")


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="kubecerts-chromium-")
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0", "--window-size=1280,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = os.path.join(profile, "DevToolsActivePort")
    try:
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            pages = [p for p in json.load(response) if p.get("type") == "page"]
        yield DevTools(pages[0]["webSocketDebuggerUrl"])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(browser, report_file):
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    browser.call("Page.navigate", url="file://" + report_file)
    browser.wait_for("Page.loadEventFired")
    return browser


def test_script_ran_and_nothing_went_wrong(page):
    assert page.evaluate("document.body.getAttribute('data-ready')") == "true"
    assert page.problems() == []
    assert [u for u in page.requests() if not u.startswith("file://")] == [], "report.html must load nothing"


def test_table_rows_render(page):
    rows = page.evaluate("Array.from(document.querySelectorAll('#certs tbody tr')).map(r => r.cells[0].textContent)")
    assert rows.count("cp1") == 3 and rows.count("k3s1") == 3 and "talos1" in rows
    height = page.evaluate("document.querySelector('#certs tbody tr').getBoundingClientRect().height")
    assert height > 10


def test_timeline_renders_with_status_colours(page):
    bars = page.evaluate("""Array.from(document.querySelectorAll('#timeline g.bar')).map(g => {
        const r = g.querySelector('rect').getBoundingClientRect();
        return {status: g.getAttribute('data-status'), width: r.width, height: r.height,
                fill: getComputedStyle(g.querySelector('rect')).fill};
    })""")
    assert len(bars) == 12
    assert all(b["width"] >= 2 and b["height"] > 4 for b in bars)
    fills = {b["status"]: b["fill"] for b in bars}
    assert set(fills) == {"critical", "warning", "ok"}
    assert len(set(fills.values())) == 3
    assert page.evaluate("document.querySelector('#timeline line.now').getBoundingClientRect().height") > 50


def test_sorting_by_days_left(page):
    page.evaluate("document.querySelector('#certs th:nth-child(7)').click()")
    days = page.evaluate("""Array.from(document.querySelectorAll('#certs tbody tr'))
        .map(r => r.cells[6].getAttribute('data-sort')).filter(v => v !== '').map(Number)""")
    assert days == sorted(days) and days[0] < 0
    page.evaluate("document.querySelector('#certs th:nth-child(7)').click()")
    days_desc = page.evaluate("""Array.from(document.querySelectorAll('#certs tbody tr'))
        .map(r => r.cells[6].getAttribute('data-sort')).filter(v => v !== '').map(Number)""")
    assert days_desc == sorted(days_desc, reverse=True)


def test_filter_by_severity(page):
    page.evaluate("document.querySelector('.controls button[data-filter=critical]').click()")
    visible = page.evaluate("""Array.from(document.querySelectorAll('#certs tbody tr'))
        .filter(r => r.offsetParent !== null).map(r => r.getAttribute('data-status'))""")
    assert visible and set(visible) == {"critical"}
    bars = page.evaluate("""Array.from(document.querySelectorAll('#timeline g.bar'))
        .filter(g => !g.classList.contains('hidden')).map(g => g.getAttribute('data-status'))""")
    assert set(bars) == {"critical"}
    page.evaluate("document.querySelector('.controls button[data-filter=all]').click()")


def test_screenshot(page):
    os.makedirs(OUTPUT, exist_ok=True)
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    path = os.path.join(OUTPUT, "audit-report.png")
    import base64
    with open(path, "wb") as handle:
        handle.write(base64.b64decode(shot["data"]))
    assert os.path.getsize(path) > 10000


def test_console_errors_would_be_caught(page):
    # The listener itself works: a deliberate error shows up as a problem.
    page.evaluate("console.error('deliberate')")
    page.evaluate("new Promise(r => setTimeout(r, 100))")
    assert any("deliberate" in p for p in page.problems())
