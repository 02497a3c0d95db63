"""A headless Chromium driven over the Chrome DevTools Protocol (websocket-client),
for the browser tier of the end-to-end tests. Networking is cut twice: a proxy
that refuses everything (port 9, discard) and Network.emulateNetworkConditions
offline; every request the page makes is recorded so a test can assert there
were none besides the file itself."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class CdpError(RuntimeError):
    pass


class Chromium:
    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 20):
        exe = chromium_path()
        if not exe:
            raise CdpError("chromium not found (apt-get install chromium)")
        self.profile = Path(tempfile.mkdtemp(prefix="opensre-cdp-"))
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
             "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.events: list[dict] = []
        self._id = 0
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None:
                raise CdpError(f"chromium exited {self.proc.returncode}: {self.proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                self.close()
                raise CdpError("chromium did not write DevToolsActivePort")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        # the page target's socket (loopback only; the proxy bypass covers nothing else)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout))
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self.width, self.height = width, height

    # -- protocol --------------------------------------------------------------
    def send(self, method: str, timeout: float = 30, **params) -> dict:
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CdpError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
            if time.monotonic() > deadline:
                raise CdpError(f"{method}: no answer in {timeout} s")

    def pump(self, seconds: float) -> None:
        """Collect events for a while (no command outstanding)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ws.settimeout(max(0.01, end - time.monotonic()))
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                return
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expr: str):
        r = self.send("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise CdpError(f"{expr[:80]}: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r["result"].get("value")

    def wait_for(self, expr: str, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while not self.eval(expr):
            if time.monotonic() > end:
                raise CdpError(f"timed out waiting for {expr}")
            time.sleep(0.05)

    # -- what the tests use ----------------------------------------------------
    def open_offline(self, url: str, timeout: float = 30) -> None:
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                  uploadThroughput=-1)
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)
        self.send("Page.navigate", url=url)
        end = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > end:
                raise CdpError("page did not load")
            self.pump(0.1)

    def click(self, x: float, y: float) -> None:
        for typ in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=typ, x=x, y=y, button="left", clickCount=1)

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                              for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, height: int | None = None) -> None:
        """The top `height` pixels of the page, laid out in a viewport that tall
        (captureBeyondViewport misplaces sticky elements)."""
        h = height or self.height
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=h, deviceScaleFactor=1, mobile=False)
        self.eval("new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))")
        r = self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(r["data"]))
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                try:
                    self.send("Browser.close", timeout=5)
                except Exception:  # noqa: BLE001 - closing anyway
                    pass
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
