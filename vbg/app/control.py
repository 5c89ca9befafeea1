"""`vbg ctl`: commands to the running app over a per-user local socket (one JSON line each way).

The server lives in the window's thread, so commands act on widgets and the engine exactly as a
click would. On Linux and macOS the socket is a file only its user can open; on Windows a named pipe
restricted to the user.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from vbg.errors import VbgError
from vbg.resources import cache_dir



def socket_name() -> str:
    if sys.platform == "win32":
        return f"vbg-{getpass.getuser()}"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(runtime) if runtime and os.access(runtime, os.W_OK) else cache_dir()
    return str(folder / "vbg.sock")


class ControlServer:
    """Accepts `vbg ctl` connections; `handler(command, args) -> dict` answers each request."""

    def __init__(self, handler: Callable[[str, list[str]], dict], name: str | None = None):
        from PySide6.QtNetwork import QLocalServer

        self.name = name or socket_name()
        self._handler = handler
        self._server = QLocalServer()
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if sys.platform != "win32":
            Path(self.name).parent.mkdir(parents=True, exist_ok=True)
        QLocalServer.removeServer(self.name)  # a stale socket left by a crash (we checked nobody answers)
        if not self._server.listen(self.name):
            raise VbgError(f"cannot listen on {self.name} for vbg ctl: {self._server.errorString()}")
        if sys.platform != "win32":
            os.chmod(self.name, 0o600)
        self._server.newConnection.connect(self._accept)
        self._buffers = {}

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            conn = self._server.nextPendingConnection()
            self._buffers[conn] = b""
            conn.readyRead.connect(lambda c=conn: self._read(c))
            conn.disconnected.connect(lambda c=conn: self._forget(c))

    def _forget(self, conn) -> None:
        """A finished connection: its buffer and the socket itself go (one per `vbg ctl` call, for as
        long as the window runs)."""
        self._buffers.pop(conn, None)
        conn.deleteLater()

    def _read(self, conn) -> None:
        self._buffers[conn] = self._buffers.get(conn, b"") + bytes(conn.readAll())
        if b"\n" not in self._buffers[conn]:
            return
        line = self._buffers[conn].split(b"\n", 1)[0]
        try:
            request = json.loads(line)
            command, args = request["command"], [str(a) for a in request.get("args", [])]
            reply = self._handler(command, args)  # the handler refuses verbs it does not know
        except (ValueError, KeyError, TypeError) as e:
            reply = {"ok": False, "error": f"bad request: {e}"}
        except VbgError as e:
            reply = {"ok": False, "error": str(e)}
        conn.write((json.dumps(reply) + "\n").encode())
        conn.flush()
        conn.disconnectFromServer()

    def close(self) -> None:
        self._server.close()


def send(command: str, args: list[str] | None = None, timeout_ms: int = 3000, name: str | None = None) -> dict:
    """Sends one command to the running app; raises VbgError when none is running."""
    from PySide6.QtNetwork import QLocalSocket

    sock = QLocalSocket()
    sock.connectToServer(name or socket_name())
    if not sock.waitForConnected(timeout_ms):
        raise VbgError("vbg is not running (start it with `vbg` or `vbg gui`)", exit_code=1)
    sock.write((json.dumps({"command": command, "args": args or []}) + "\n").encode())
    sock.flush()
    data = b""
    while b"\n" not in data:
        if not sock.waitForReadyRead(timeout_ms):
            if sock.state() == QLocalSocket.LocalSocketState.UnconnectedState and data:
                break
            raise VbgError(f"vbg did not answer `{command}` within {timeout_ms / 1000:g} s", exit_code=1)
        data += bytes(sock.readAll())
    sock.disconnectFromServer()
    return json.loads(data.split(b"\n", 1)[0])


def app_is_running(name: str | None = None) -> bool:
    try:
        send("status", timeout_ms=500, name=name)
        return True
    except VbgError:
        return False
