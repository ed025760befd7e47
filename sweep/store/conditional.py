"""One small object in an S3 bucket changed only by conditional writes: a compare-and-swap on its ETag.

`pyarrow.fs` sends no conditions, so this uses boto3 (the `s3` extra): a create is a PUT with
`If-None-Match: *` (it fails when the object exists), a replace a PUT with `If-Match: <etag>` (it fails when
the object changed since it was read), and a delete a DELETE with `If-Match`. S3 has enforced them since
2024; so do MinIO and the S3 server the tests start. Endpoint and credentials come from the AWS settings
(`sweep/store/location.py`), with the same timeouts and attempts as the tables' requests.

A request is retried when its reply is lost; if the first attempt landed, the retry meets its own write
and fails its condition. So a failed condition on a retry is judged by what the store holds: the object
with these very bytes (a PUT), or no object (a DELETE), is this writer's own success, not a lost race.
"""

from __future__ import annotations

from collections.abc import Callable

from sweep.store.location import ATTEMPTS, CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S, s3_endpoint, s3_region

LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def available() -> bool:
    try:
        import boto3  # noqa: F401
    except ImportError:
        return False
    return True


class ConditionalObject:
    """The object `s3://<path>` (`path` is `bucket/key`)."""

    def __init__(self, path: str) -> None:
        import boto3
        from botocore.config import Config

        self.bucket, _, self.key = path.partition("/")
        endpoint, region = s3_endpoint(), s3_region()
        config = Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=REQUEST_TIMEOUT_S,
            retries={"max_attempts": ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoint else None,
        )
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or ("us-east-1" if endpoint else None),
            config=config,
        )

    def get(self) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when there is none."""
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise _os_error(exc) from None
        except Exception as exc:  # botocore's connection errors
            raise _os_error(exc) from None
        return answer["Body"].read(), answer["ETag"]

    def put(self, body: bytes, etag: str | None) -> str | None:
        """Write `body` if the object is still as read (`etag`; None: if there is none); its new ETag, or
        None when another writer came first."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        return self._conditional(
            lambda: self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **condition),
            lambda found: found[1] if found is not None and found[0] == body else None,
        )

    def delete(self, etag: str) -> bool:
        """Delete the object if it is still as read; False when it changed."""
        return (
            self._conditional(
                lambda: self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag),
                lambda found: "deleted" if found is None else None,
            )
            is not None
        )

    def _conditional(
        self, request: Callable[[], dict], own: Callable[[tuple[bytes, str] | None], str | None]
    ) -> str | None:
        """Send a conditional request; its new ETag, or None when another writer came first. `own` tells,
        from what the store holds now, whether a retry met this request's own first attempt."""
        from botocore.exceptions import ClientError

        try:
            answer = request()
        except ClientError as exc:
            code = _code(exc)
            retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
            if retried and (code in LOST_RACE or code in ("NoSuchKey", "404")):
                return own(self.get())
            if code in LOST_RACE:
                return None
            raise _os_error(exc) from None
        except Exception as exc:
            raise _os_error(exc) from None
        return answer.get("ETag") or "deleted"


def _code(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(
        error.get("Code") or getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    )


def _os_error(exc: Exception) -> OSError:
    return OSError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
