"""Where results live: a local folder or a `pyarrow.fs` URI, and how an S3 URI's settings reach everything.

An S3 store (`s3://bucket/prefix`, or any S3-compatible one: MinIO, R2, Ceph) takes its endpoint and
credentials from the standard AWS settings: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`), `AWS_REGION`,
`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, or a profile. A URI may also carry them in its query
(`s3://bucket/r?endpoint_override=host:9000&scheme=http`), and its credentials before the bucket
(`s3://KEY:SECRET@bucket/r`); `settle` splits them off, hands each setting to this process's AWS variables
(which the Ray workers it starts inherit, see `worker_environment`), and keeps the plain URI, which is what
the project prints, saves and joins paths to: no secret is printed or saved. Every S3 request here has a
connect and a request timeout and three attempts, so a store that is away fails a command in seconds
instead of hanging it. Tune's storage for a sweep (`ray.storage`) is settled the same way (`settled_spec`,
`tune_location`).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow.fs as pafs

from sweep.errors import UserError
from sweep.spec import SweepSpec

CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 20.0
ATTEMPTS = 3
# A URI's query setting -> the AWS variable that carries it.
QUERY_SETTINGS = {
    "endpoint_override": "AWS_ENDPOINT_URL",
    "region": "AWS_REGION",
    "access_key": "AWS_ACCESS_KEY_ID",
    "secret_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}
AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)
_SHOWN: dict[str, str] = {}  # a settled URI -> the same with the settings of its query that are no secret
PUBLIC = ("endpoint_override", "scheme", "region")


def is_uri(root: str) -> bool:
    return "://" in root and not root.startswith("file://")


def local_folder(root: str) -> Path | None:
    """The folder a results root names on this machine (a path or a `file://` URI); None for a bucket."""
    if root.startswith("file://"):
        return Path(unquote(urlsplit(root).path))
    return None if is_uri(root) else Path(root)


def is_s3(root: str) -> bool:
    return root.startswith("s3://")


def settle(root: str, field: str = "--results") -> str:
    """The URI without its credentials and query. An S3 URI's settings (its query, and `KEY:SECRET@` before
    its bucket) become this process's AWS variables, percent-decoded only: a '+' in a secret stays a '+'."""
    if not root.strip():
        raise UserError(f"{field}: empty; give a folder or a URI such as s3://bucket/results")
    if not is_uri(root):
        return root
    address, _, query = root.partition("?")
    scheme, _, rest = address.partition("://")
    userinfo, rest = _userinfo(rest)
    plain = f"{scheme}://{rest}"
    masked = plain if userinfo is None else f"{scheme}://***@{rest}"
    if "?" not in root and userinfo is None:
        return root  # settled already, or nothing to settle: what `shown` knows of it stays
    if not is_s3(root):
        if query:
            raise UserError(
                f"{field} {masked}: a query on a {scheme}:// URI is not supported; give that store's "
                "settings through its own environment variables"
            )
        return root
    settings = _settings(query, userinfo, masked, field)
    public = "&".join(f"{name}={settings[name]}" for name in PUBLIC if name in settings)
    _SHOWN[plain] = f"{plain}?{public}" if public else plain
    for name, value in settings.items():
        if name == "scheme":
            continue
        if name == "endpoint_override" and "://" not in value:
            value = f"{settings.get('scheme', 'https')}://{value}"
        os.environ[QUERY_SETTINGS[name]] = value
    return plain


def _userinfo(rest: str) -> tuple[str | None, str]:
    """`KEY:SECRET@bucket/key` -> ("KEY:SECRET", "bucket/key"). A bucket's name holds neither ':' nor '@', so
    an '@' before any '/', or after a ':' that comes before the first '/', ends credentials (a secret may
    hold a '/'); an '@' further on is part of an object's key."""
    head, at, tail = rest.partition("@")
    if not at or ("/" in head and ":" not in head.split("/", 1)[0]):
        return None, rest
    return head, tail


def _settings(query: str, userinfo: str | None, masked: str, field: str) -> dict[str, str]:
    """An S3 URI's settings, checked: known names, no empty value, credentials as KEY:SECRET."""
    settings = {}
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        settings[unquote(name)] = unquote(value)  # not `parse_qsl`, which reads a '+' as a space
    unknown = sorted(set(settings) - {*QUERY_SETTINGS, "scheme"})
    if unknown:
        allowed = ", ".join(sorted({*QUERY_SETTINGS, "scheme"}))
        raise UserError(f"{field} {masked}: unknown setting {unknown[0]!r} in its query; allowed: {allowed}")
    if userinfo is not None:
        key, colon, secret = userinfo.partition(":")
        if not (key and colon and secret):
            raise UserError(
                f"{field} {masked}: credentials before the bucket are KEY:SECRET@ (percent-encoded), or "
                "give access_key and secret_key in its query, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        settings.update(access_key=unquote(key), secret_key=unquote(secret))
    for name, value in settings.items():
        if not value.strip():
            raise UserError(
                f"{field} {masked}: {name} is empty in its query; give it a value or leave it out"
            )
    if settings.get("scheme", "https") not in ("http", "https"):
        raise UserError(f"{field} {masked}: scheme {settings['scheme']!r} in its query; allowed: http, https")
    return settings


def shown(root: object) -> str:
    """A results folder or URI as commands print it for the user to run again: with its query's endpoint,
    scheme and region, never its credentials, and quoted for a shell (an '&' or a space stays in it)."""
    return shlex.quote(_SHOWN.get(str(root), str(root)))


def worker_environment() -> dict[str, str]:
    """The AWS variables Ray workers need to reach the stores of this process: those set in its environment,
    the settings it took from URIs' queries among them (a cluster's nodes may lack them)."""
    return {name: os.environ[name] for name in AWS_VARIABLES if name in os.environ}


def open_filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path in it of a local folder or a URI (settled first)."""
    root = settle(root)
    if not is_uri(root):
        path = root.removeprefix("file://")
        return pafs.LocalFileSystem(), os.path.abspath(path) if not root.startswith("file://") else path
    if is_s3(root):
        return s3_filesystem(), root.removeprefix("s3://").rstrip("/")
    return pafs.FileSystem.from_uri(root)


def s3_endpoint() -> str | None:
    """The S3 endpoint the AWS settings name (None: AWS's own)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def s3_region() -> str | None:
    """The region the AWS settings name, if any."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def s3_filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem from the AWS settings, with timeouts and a bounded number of attempts."""
    endpoint = s3_endpoint()
    options: dict = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "request_timeout": REQUEST_TIMEOUT_S,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=ATTEMPTS),
        # a file is sent when it is closed: one PUT for a small one, not a multipart upload's three requests
        "allow_delayed_open": True,
    }
    region = s3_region()
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options.update(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
        options["region"] = region or "us-east-1"  # S3-compatible stores ignore it; AWS's SDK wants one
    elif region:
        options["region"] = region
    return pafs.S3FileSystem(**options)


def missing_bucket(fs: pafs.FileSystem, base: str) -> str | None:
    """A line that names the bucket of a path in an S3 store when the bucket does not exist, else None."""
    bucket = base.split("/", 1)[0]
    if fs.get_file_info(bucket).type != pafs.FileType.NotFound:
        return None
    return f"bucket {bucket} does not exist at {endpoint_shown()}"


def endpoint_shown() -> str:
    """The S3 endpoint requests go to, for messages (no credentials)."""
    return s3_endpoint() or "AWS S3"


def store_failure(exc: BaseException) -> str:
    """One line for a request the store failed: its reason, and where the requests went."""
    reason = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).strip().splitlines()[0]
    return f"the store failed a request ({reason}; endpoint {endpoint_shown()})"


def store_stopped(sweep: str, results: str, reason: object, store: str = "the results store") -> str:
    """The line that stops a sweep whose store failed: why, and the command that continues it."""
    return (
        f"sweep {sweep} stopped: {reason}; once {store} takes writes again, "
        f"continue it with 'sweep resume {sweep} --results {shown(results)}'"
    )


def settled_spec(spec: SweepSpec) -> SweepSpec:
    """The spec with `ray.storage` as a plain URI: its query's settings are this process's AWS variables
    now (its credentials too), so neither the sweep's state nor Tune's holds a credential."""
    storage = settle(spec.ray.storage, "ray.storage") if spec.ray.storage else None
    if storage == spec.ray.storage:
        return spec
    return dataclasses.replace(spec, ray=dataclasses.replace(spec.ray, storage=storage))


def tune_location(root: str) -> tuple[str, pafs.FileSystem | None]:
    """The `storage_path` and `storage_filesystem` Tune takes for a local folder or a URI: on an object
    store, our filesystem (timeouts, bounded attempts, the endpoint of the AWS settings) and a path in it."""
    if not is_uri(root):
        return root, None
    fs, path = open_filesystem(root)
    return path, fs
