"""Headless Chromium driven over the DevTools protocol, for the outbox page tests (no tests
here). No websocket package is installed, so this holds a minimal RFC 6455 client (text frames,
client masking, fragmentation, ping) on the standard library: enough for CDP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str | None:
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


class WebSocket:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head[:200]!r}")

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send(self, text: str) -> None:
        self._frame(0x1, text.encode("utf-8"))

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else b""
            data = self._exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self._frame(0xA, data)
                continue
            if opcode == 0x8:
                raise ConnectionError("websocket closed by peer")
            message += data
            if b0 & 0x80:
                return message.decode("utf-8")

    def close(self) -> None:
        try:
            self._frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class Page:
    """One tab over a flattened CDP session; keeps every event it sees."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: bool = False, timeout: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events:
                if ev.get("method") == method:
                    return ev
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def evaluate(self, expression: str) -> Any:
        out = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def open(self, url: str) -> None:
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_event("Page.loadEventFired")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        found = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev.get("method") == "Runtime.exceptionThrown":
                found.append(str(p.get("exceptionDetails", {}).get("text")))
            elif ev.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                found.append(" ".join(str(a.get("value")) for a in p.get("args", [])))
            elif ev.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                found.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
        return found

    def screenshot(self, path: Path, width: int = 1200) -> None:
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 700, "deviceScaleFactor": 1, "mobile": False},
            session=True)  # measure the page at a small height, then fit it exactly
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": min(height, 8000), "deviceScaleFactor": 1,
            "mobile": False}, session=True)
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def chromium(profile: Path, timeout: float = 60.0) -> Iterator[Page]:
    exe = chromium_path()
    assert exe, "chromium not found"
    profile.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--mute-audio", "--remote-debugging-address=127.0.0.1",
           "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    ws = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {proc.poll()})")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        ws = WebSocket(f"ws://127.0.0.1:{port}{path}")
        yield Page(ws)
    finally:
        if ws is not None:
            ws.close()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


AUDIO_STATE = """(() => Array.from(document.querySelectorAll('audio')).map(a => ({
  src: a.getAttribute('src'), ready: a.readyState, duration: a.duration,
  error: a.error ? a.error.code : null})))()"""

WAIT_AUDIO = """new Promise(resolve => {
  const audios = Array.from(document.querySelectorAll('audio'));
  const done = () => audios.every(a => a.readyState >= 1 || a.error);
  if (done()) return resolve(true);
  const t0 = Date.now();
  const tick = () => done() || Date.now() - t0 > 20000 ? resolve(done()) : setTimeout(tick, 50);
  audios.forEach(a => a.load());
  tick();
})"""

IMAGE_STATE = """Array.from(document.images).map(i => ({src: i.getAttribute('src'),
  complete: i.complete, width: i.naturalWidth}))"""


ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def check_run_page(page: Page, folder: Path, shot: Path | None = None) -> dict:
    """Assert the run page works for a listener; returns the manifest."""
    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    page.open((folder / "index.html").as_uri())
    assert page.evaluate(WAIT_AUDIO) is True, page.evaluate(AUDIO_STATE)
    audios = page.evaluate(AUDIO_STATE)
    keys = [c["key"] for c in manifest.get("columns", [])] or ["lora", "base"]
    files = [r["file"] for c in manifest["clips"] for v in keys
             if (r := c["renders"].get(v)) and r["file"]]
    assert [a["src"] for a in audios] == files            # one player per clip, in order
    for audio in audios:
        assert audio["error"] is None and audio["ready"] >= 1, audio
        assert audio["duration"] > 1.0, audio            # decodable: the browser measured it
    images = page.evaluate(IMAGE_STATE)
    assert [(i["src"], i["complete"]) for i in images] == [("loss.png", True)]
    assert images[0]["width"] > 300
    assert page.evaluate("document.querySelectorAll('script').length") == 0  # lyrics escaped
    assert page.errors() == []
    if shot is not None:
        page.screenshot(shot)
    return manifest
