"""boto3 at our boundary: clients from the standard credential and endpoint chain, retries through
botocore's standard mode (plus S3's 409 OperationAborted), and error translation.

The boundary (after httpx's map_httpcore_exceptions) is built into every client made here: each call
of a client from aws_client() (and of its paginators, waiters and response bodies) turns botocore's
errors into ours: a kind callers catch (NotFound, Conflict, PreconditionFailed, AccessDenied,
Unsupported, Throttled and the few finer kinds below them, from the table KINDS by error code or HTTP
status) or AwsError for any other answer. `with aws(address, step):` around a block names what failed,
so the error is one line a user can act on. Anything that is not botocore's passes unchanged: a bug stays
a bug. Callers write `except NotFound`, not `error_code(e) == ...`; no module but this one reads an
error code.

Imported only by targets that talk to AWS or an S3-compatible store, so that the local target
never loads boto3. Credentials and endpoints come only from boto3's chain (environment, profile,
role; AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3), or an endpoint_url the config names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

import boto3
import boto3.exceptions
import botocore.config
import botocore.exceptions
from botocore.retries import standard

from ..errors import ConfigError, ProviderError

MAX_ATTEMPTS = 8


class _Conditions(standard.StandardRetryConditions):
    """botocore's standard conditions, plus 409 OperationAborted: S3 says it while a conflicting
    operation on the same bucket (a create right after a delete, say) is still in progress."""

    def __init__(self, max_attempts: int):
        super().__init__(max_attempts=max_attempts)
        self._aborted = standard.TransientRetryableChecker(
            transient_error_codes=["OperationAborted"], transient_status_codes=[], transient_exception_cls=()
        )

    def is_retryable(self, context) -> bool:
        return super().is_retryable(context) or (
            self._max_attempts_checker.is_retryable(context) and self._aborted.is_retryable(context)
        )


def _use_standard_retries_with_aborted(client) -> None:
    """Replace the client's standard retry handler by one that also retries OperationAborted."""
    event = f"needs-retry.{client.meta.service_model.service_id.hyphenize()}"
    client.meta.events.unregister(event, unique_id=f"retry-config-{client.meta.service_model.service_id.hyphenize()}")
    handler = standard.register_retry_handler(client, max_attempts=MAX_ATTEMPTS)
    handler._retry_policy._retry_checker = _Conditions(MAX_ATTEMPTS)


_lock = threading.Lock()
_session = None


def _shared_session():
    """One boto3 session per process: it caches the service models (loading them costs ~0.1 s),
    and clients are made under a lock because sessions are not thread-safe."""
    global _session
    if _session is None:
        _session = boto3.session.Session()
    return _session


def aws_client(service: str, *, region: str, endpoint_url: str | None = None, addressing_style: str = "auto"):
    """A client from boto3's chain, with botocore's standard retries (plus OperationAborted for S3)."""
    config = botocore.config.Config(
        region_name=region,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": addressing_style},
    )
    with _lock:
        try:
            client = _shared_session().client(service, endpoint_url=endpoint_url, config=config)
        except botocore.exceptions.ProfileNotFound as exc:
            raise ConfigError(
                f"AWS_PROFILE: the profile {exc.kwargs.get('profile')!r} is not in the AWS config "
                "files (aws configure --profile NAME makes it)"
            ) from None
        if service == "s3":
            from .s3stores import check_setting_bodies

            _use_standard_retries_with_aborted(client)
            check_setting_bodies(client)
    return Bounded(client, service)


def s3_client(*, region: str, endpoint_url: str | None = None, addressing_style: str = "auto"):
    return aws_client("s3", region=region, endpoint_url=endpoint_url, addressing_style=addressing_style)


class AwsError(ProviderError):
    """An answer of AWS (or an S3-compatible store) that was not what the call wanted, in one line."""

    code: str | None = None  # the answer's error code (or HTTP status), for what a kind leaves open
    status: int | None = None  # the answer's HTTP status
    service: str = ""  # the client's service ("s3", "dynamodb", ...)
    detail: str = ""  # what the answer said, or what to do about it
    addressed = False  # named by an aws() block; until then by the service and the call

    def at(self, address: str, step: str) -> Self:
        """The same answer, as one line naming what failed."""
        again = type(self)(f"{address}: {step} failed: {self.detail}")
        again.code, again.status, again.service, again.detail = self.code, self.status, self.service, self.detail
        again.addressed = True
        return again


class NotFound(AwsError):
    pass


class NotConfigured(NotFound):
    """A bucket's setting (its tags, policy, encryption, ...) was never set."""


class NoSuchBucket(NotFound):
    """The bucket a call names does not exist (a HEAD, which has no body, says only 404: NotFound)."""


class Conflict(AwsError):
    """The resource's state refuses the call: it exists, is not empty, is being deleted, or changed."""


class BucketTaken(Conflict):
    """CreateBucket: the name is another account's bucket (S3's names are global)."""


class BucketNotEmpty(Conflict):
    pass


class PreconditionFailed(AwsError):
    """A conditional write lost: what it was conditioned on is no longer so."""


class AccessDenied(AwsError):
    pass


class Unsupported(AwsError):
    """This store does not do that (an S3-compatible store without a feature of S3's)."""


class Throttled(AwsError):
    pass


KINDS: dict[type[AwsError], tuple[str, ...]] = {
    NotFound: (
        "404",
        "NotFound",
        "NoSuchKey",
        "NoSuchVersion",
        "NoSuchUpload",
        "NoSuchEntity",
        "ResourceNotFoundException",
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBSubnetGroupNotFoundFault",
        "DBParameterGroupNotFound",
        "DBSnapshotNotFound",
        "InvalidGroup.NotFound",
        "InvalidGroupId.NotFound",
    ),
    NoSuchBucket: ("NoSuchBucket",),
    NotConfigured: (
        "NoSuchTagSet",
        "NoSuchBucketPolicy",
        "NoSuchPublicAccessBlockConfiguration",
        "NoSuchLifecycleConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
        "OwnershipControlsNotFoundError",
        "ObjectLockConfigurationNotFoundError",
        "ReplicationConfigurationNotFoundError",
    ),
    Conflict: (
        "409",
        "BucketAlreadyOwnedByYou",
        "OperationAborted",
        "ConditionalRequestConflict",
        "ResourceExistsException",
        "EntityAlreadyExists",
        "DBInstanceAlreadyExists",
        "InvalidDBInstanceState",
        "InvalidRequestException",
    ),
    BucketTaken: ("BucketAlreadyExists",),
    BucketNotEmpty: ("BucketNotEmpty",),
    PreconditionFailed: ("412", "PreconditionFailed", "ConditionalCheckFailedException"),
    AccessDenied: ("403", "AccessDenied", "AccessDeniedException", "AllAccessDisabled", "UnauthorizedOperation"),
    Unsupported: ("501", "NotImplemented", "XNotImplemented"),
    Throttled: (
        "429",
        "503",
        "Throttling",
        "ThrottlingException",
        "SlowDown",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    ),
}
_KIND_OF = {code: kind for kind, codes in KINDS.items() for code in codes}


_FOREIGN = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, boto3.exceptions.Boto3Error)


@contextmanager
def aws(address: str, step: str) -> Iterator[None]:
    """Names what failed in a block of AWS calls (see the module's docstring): an answer not yet named
    by an inner block becomes "<address>: <step> failed: ...". A client not made by aws_client()
    has its botocore errors turned here."""
    try:
        yield
    except AwsError as exc:
        if exc.addressed:
            raise
        raise exc.at(address, step) from None
    except _FOREIGN as exc:
        raise ours(address, step, exc) from None


def ours(address: str, step: str, exc: BaseException, *, service: str = "") -> AwsError:
    """botocore's exc as the kind of ours its code names (AwsError when none), its message one line."""
    code, status = None, None
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    kind = _KIND_OF.get(code or "") or _KIND_OF.get(str(status or "")) or AwsError
    found = kind(f"{address}: {step} failed: {_detail(exc)}")
    found.code, found.status, found.service, found.detail = (
        code or (status and str(status)),
        status,
        service,
        _detail(exc),
    )
    found.addressed = True
    return found


@contextmanager
def translated(address: str, step: str, *, ignore: tuple[type[AwsError], ...] = ()) -> Iterator[None]:
    """aws(), and an answer of a kind in ignore dropped (deleting what is already gone)."""
    try:
        with aws(address, step):
            yield
    except ignore:
        pass


class Bounded:
    """A boto3 client, or one of its paginators, waiters or response bodies, whose calls raise our kinds
    (see the module's docstring). Everything else (meta, exceptions) is the client's own."""

    def __init__(self, inner: Any, service: str, step: str = ""):
        self._inner, self._service, self._step = inner, service, step

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr
        meta = getattr(self._inner, "meta", None)
        step = self._step or (meta.method_to_api_mapping.get(name, name) if meta is not None else name)
        return self._bounded(attr, name, step)

    def _bounded(self, call: Callable[..., Any], name: str, step: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                out = call(*args, **kwargs)
            except _FOREIGN as exc:
                raise self._ours(step, exc) from None
            if name in ("get_paginator", "get_waiter"):
                return Bounded(out, self._service, step=f"{name[4:]} {args[0] if args else ''}".strip())
            if name == "paginate":
                return self._pages(iter(out), step)
            if name == "iter_chunks":
                return self._pages(out, step)
            if isinstance(out, dict) and hasattr(out.get("Body"), "read"):
                out["Body"] = Bounded(out["Body"], self._service, step=f"{step} (reading the body)")
            return out

        return run

    def _pages(self, pages: Iterator[Any], step: str) -> Iterator[Any]:
        while True:
            try:
                page = next(pages, _END)
            except _FOREIGN as exc:
                raise self._ours(step, exc) from None
            if page is _END:
                return
            yield page

    def _ours(self, step: str, exc: BaseException) -> AwsError:
        found = ours(self._service, step, exc, service=self._service)
        found.addressed = False
        return found


_END = object()


# What to do about the error codes any AWS call can meet, whatever the service.
HINTS = {
    "ExpiredToken": "the AWS credentials have expired: renew them",
    "ExpiredTokenException": "the AWS credentials have expired: renew them",
    "InvalidAccessKeyId": "the store does not know this AWS access key",
    "UnrecognizedClientException": "the service does not know this AWS access key",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key",
    "RequestTimeTooSkewed": "this machine's clock is off: synchronise it",
}


def _detail(exc: BaseException) -> str:
    """What botocore's exc says, in one line, and where there is one, what to do; never the request
    (it may carry data)."""
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return (
            "no AWS credentials (set them the usual boto3 way: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role)"
        )
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"cannot reach the endpoint {exc.kwargs.get('endpoint_url')}"
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code")
        if code in HINTS:
            return f"{code}: {HINTS[code]}"
        return f"{code}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
