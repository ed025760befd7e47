"""A TCP proxy on 127.0.0.1 in front of the tests' S3 server, which can misbehave on purpose: drop the reply
to a request whose request line matches (the request itself reaches the server and takes effect), or hold
matching requests unanswered (a store that stalls for some keys only). It logs each request line it passes
on, with the time it did."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time


class S3Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.drop_reply: re.Pattern | None = None  # the next request that matches gets no reply
        self.stall: re.Pattern | None = None  # requests that match are held, unanswered
        self.passed: list[tuple[float, str]] = []  # (time.time(), request line) of each request passed on
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        dropping = threading.Event()
        threading.Thread(target=self._replies, args=(upstream, client, dropping), daemon=True).start()
        try:
            while data := client.recv(65536):
                line = _request_line(data)
                if line is not None:
                    if self.stall is not None and self.stall.search(line):
                        while self.stall is not None and self.stall.search(line):
                            time.sleep(0.05)
                        raise OSError("stalled")  # the client gave up on it long ago: close
                    if self.drop_reply is not None and self.drop_reply.search(line):
                        self.drop_reply = None
                        dropping.set()
                    self.passed.append((time.time(), line))
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, upstream)

    def _replies(self, upstream: socket.socket, client: socket.socket, dropping: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if dropping.is_set() and re.match(rb"HTTP/1\.[01] [2-5]", data):
                    time.sleep(0.2)  # the server has done the request; its reply is lost on the way
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, upstream)


def _request_line(data: bytes) -> str | None:
    match = re.match(rb"(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n", data)
    return match.group(0).decode().strip() if match else None


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
