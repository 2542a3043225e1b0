"""A TCP proxy to PostgreSQL that a test can cut and restore: a database outage on demand.

cut() closes the listening socket and every connection through it, so the daemon sees what a
stopped or crashed server looks like (reset connections, refused new ones) without stopping
the PostgreSQL that the rest of the suite shares. hang() is an unreachable server instead (its
host gone, a partition): nothing passes any more and nothing is reset, so only the daemon's own
timeouts end its waits. restore() resets what is left and forwards on the same port again.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._hanging = False

    def start(self) -> int:
        self._listen()
        return self.port

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut() closed the listener
            if self._hanging:
                with self._lock:  # accepted, never answered
                    self._connections.add(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._hanging:  # a partition: what is sent is lost
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        """The database is gone: refuse new connections, reset the open ones."""
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone does not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            self._close(sock)

    def hang(self) -> None:
        """The database is unreachable: nothing gets through, nothing is refused or reset."""
        self._hanging = True

    def restore(self) -> None:
        """The database is back, on the same address (connections a hang left are reset)."""
        if self._hanging:
            self.cut()
            self._hanging = False
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        self.cut()
