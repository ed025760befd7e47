"""A real S3 API server on 127.0.0.1 for the tests: moto's server mode, which speaks S3's HTTP protocol and
enforces conditional writes. It keeps its objects in this process's memory, so stopping it and starting it
again on the same port takes the store away and brings it back with its data. It counts the requests it
answers (from its request log)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator

import pytest

BUCKET = "sweeps"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


class S3Server:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self._server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def env(self) -> dict[str, str]:
        """The AWS settings of a process that uses this server."""
        return {**AWS, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **_keys())

    def keys(self, prefix: str = "") -> list[str]:
        found, token = [], None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix, **extra)
            found += [item["Key"] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    def body(self, key: str) -> bytes:
        return self.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
    }


class _Counter(logging.Handler):
    def __init__(self, server: S3Server) -> None:
        super().__init__()
        self.server = server

    def emit(self, record: logging.LogRecord) -> None:
        if '"' in record.getMessage():  # werkzeug's access log: one line per request answered
            self.server.requests += 1


@pytest.fixture
def s3(monkeypatch) -> Iterator[S3Server]:
    """A fresh S3 server with one bucket; this process's AWS settings point at it (restored afterwards)."""
    server = S3Server()
    server.start()
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPARSE_SWEEP_JOURNALS", os.path.join(os.environ["XDG_CACHE_HOME"], "journals"))
    server.client().create_bucket(Bucket=BUCKET)
    log = logging.getLogger("werkzeug")
    counter = _Counter(server)
    log.addHandler(counter)
    log.setLevel(logging.INFO)
    try:
        yield server
    finally:
        log.removeHandler(counter)
        server.stop()
        from moto.backends import get_backend

        get_backend("s3").reset()  # the next server starts empty
