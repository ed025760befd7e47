"""A real S3 API server on 127.0.0.1 for the tests: moto's server mode, which speaks S3's HTTP protocol and
enforces conditional writes (one at a time here, so that of two at once only one wins, as on S3). It keeps
its objects in this process's memory, so stopping it and starting it again on the same port takes the store
away and brings it back with its data. It counts the requests it answers and the bytes of the objects it is
sent."""

from __future__ import annotations

import os
import socket
import threading
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
        self.bytes_in = 0  # the bodies of the requests it answered (objects and parts put)
        self._server = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        conditional = threading.Lock()  # S3 applies a conditional write atomically; moto checks, then writes

        def counted(environ: dict, start_response):
            self.requests += 1
            if environ["REQUEST_METHOD"] == "PUT":  # an object or a part; not a multipart upload's XML
                sent = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH")
                self.bytes_in += int(sent or 0)
            if environ["REQUEST_METHOD"] != "GET" and {"HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH"} & set(environ):
                with conditional:  # two writers at once cannot both pass the check
                    return app(environ, start_response)
            return app(environ, start_response)

        self._server = make_server("127.0.0.1", self.port, counted, True, request_handler=MotoRequestHandler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
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
    try:
        yield server
    finally:
        server.stop()
        from moto.backends import get_backend

        get_backend("s3").reset()  # the next server starts empty
