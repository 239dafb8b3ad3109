"""boto3 at our boundary: clients from the standard credential and endpoint chain, retries through
botocore's standard mode (plus S3's 409 OperationAborted), and error translation.

The boundary (after httpx's map_httpcore_exceptions): `with aws(address, step):` around AWS calls turns
botocore's errors into ours, one line each naming what failed: a kind callers catch (NotFound, Conflict,
PreconditionFailed, AccessDenied, Unsupported, Throttled, from the table KINDS by error code or HTTP
status) or AwsError for any other answer. Anything that is not botocore's passes unchanged: a bug stays
a bug. Callers write `except NotFound`, not `error_code(e) == ...`.

Imported only by targets that talk to AWS or an S3-compatible store, so that the local target
never loads boto3. Credentials and endpoints come only from boto3's chain (environment, profile,
role; AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3), or an endpoint_url the config names.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import botocore.config
import botocore.exceptions
from botocore.retries import standard

from .errors import AirflowInfraError, ConfigError, ProviderError

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
    return client


def s3_client(*, region: str, endpoint_url: str | None = None, addressing_style: str = "auto"):
    return aws_client("s3", region=region, endpoint_url=endpoint_url, addressing_style=addressing_style)


class AwsError(ProviderError):
    """An answer of AWS (or an S3-compatible store) that was not what the call wanted, in one line."""

    code: str | None = None  # the answer's error code (or HTTP status), for what a kind leaves open


class NotFound(AwsError):
    pass


class Conflict(AwsError):
    """The resource's state refuses the call: it exists, is not empty, is being deleted, or changed."""


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
        "NoSuchBucket",
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
        "BucketAlreadyExists",
        "BucketAlreadyOwnedByYou",
        "BucketNotEmpty",
        "OperationAborted",
        "ConditionalRequestConflict",
        "ResourceExistsException",
        "EntityAlreadyExists",
        "DBInstanceAlreadyExists",
        "InvalidDBInstanceState",
        "InvalidRequestException",
    ),
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


@contextmanager
def aws(address: str, step: str) -> Iterator[None]:
    """The boundary around a block of AWS calls (see the module's docstring)."""
    try:
        yield
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise ours(address, step, exc) from None


def ours(address: str, step: str, exc: BaseException) -> AwsError:
    """botocore's exc as the kind of ours its code names (AwsError when none), its message one line."""
    code = error_code(exc)
    status = None
    if isinstance(exc, botocore.exceptions.ClientError):
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    kind = _KIND_OF.get(code or "") or _KIND_OF.get(status or "") or AwsError
    found = kind(str(translate(address, step, exc)))
    found.code = code or status
    return found


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


@contextmanager
def translated(address: str, step: str, *, ignore: tuple[str, ...] = ()) -> Iterator[None]:
    """aws(), and an answer whose code is in ignore dropped (deleting what is already gone)."""
    try:
        with aws(address, step):
            yield
    except AwsError as exc:
        if exc.code not in ignore:
            raise


# What to do about the error codes any AWS call can meet, whatever the service.
HINTS = {
    "ExpiredToken": "the AWS credentials have expired: renew them",
    "ExpiredTokenException": "the AWS credentials have expired: renew them",
    "InvalidAccessKeyId": "the store does not know this AWS access key",
    "UnrecognizedClientException": "the service does not know this AWS access key",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key",
    "RequestTimeTooSkewed": "this machine's clock is off: synchronise it",
}


def translate(
    address: str, step: str, exc: BaseException, *, error: type[AirflowInfraError] = ProviderError
) -> AirflowInfraError:
    """The one botocore boundary: one line naming what failed and, where there is one, what to do;
    never the request (it may carry data). error: the class of ours it becomes."""
    what = f"{address}: {step} failed"
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return error(
            f"{what}: no AWS credentials (set them the usual boto3 way: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role)"
        )
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return error(f"{what}: cannot reach the endpoint {exc.kwargs.get('endpoint_url')}")
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code")
        if code in HINTS:
            return error(f"{what}: {code}: {HINTS[code]}")
        return error(f"{what}: {code}: {err.get('Message', '')}".rstrip(": "))
    return error(f"{what}: {type(exc).__name__}: {exc}")
