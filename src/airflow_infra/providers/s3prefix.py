"""A project's prefix in a shared bucket that someone else manages (``s3_prefix``): ours only by its marker
object, following the rules of a bucket (invariant 6, docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

from ..aws.clients import (
    NoSuchBucket,
    NotFound,
    aws,
    translated,
)
from ..errors import ForeignResource, ProviderError
from ..ownership import Owner, judge
from ..resources import Observed, Resource
from .base import read_back
from .s3 import PREFIX_MARKER, S3BucketProvider, _Gone


class S3PrefixProvider(S3BucketProvider):
    """The project's prefix in a shared bucket that someone else manages: we own only the prefix,
    marked by an empty object ``<prefix>.airflow-infra``."""

    type = "s3_prefix"
    marks_atomically = True  # the marker object is all there is to it
    force_new = frozenset({"bucket", "prefix"})

    def _place(self, r: Resource) -> tuple[str, str, str | None]:
        return r.attrs["bucket"], r.attrs["prefix"], self._marker(r)

    def _marker(self, r: Resource) -> str:
        return f"{r.attrs['prefix']}{PREFIX_MARKER}"

    def read(self, r: Resource, prior: Observed | None) -> Observed | None:
        """A prefix follows the rules of a bucket (invariant 6, docs/architecture.md): ours by its marker; unmarked and holding
        anything, foreign (`import` adopts it on purpose); inside a bucket or prefix another marker
        claims, foreign whoever marked it."""
        bucket, prefix = r.attrs["bucket"], r.attrs["prefix"]
        attrs = {"bucket": bucket, "prefix": prefix, "region": r.attrs["region"]}
        try:
            with aws(r.address, "read"):
                body: bytes | None = self.s3.get_object(Bucket=bucket, Key=self._marker(r))["Body"].read(4096)
        except NoSuchBucket:
            return None
        except NotFound:
            body = None
        with translated(r.address, "read"):
            around = self._claimed_above(bucket, prefix)
            if around is not None:
                return Observed({**attrs, "marked": False}, foreign=True, whose=f"inside {around}")
            if body is None:
                # our marker's old versions (what a plain destroy leaves on a versioned bucket) are no one's data
                if prior is None and self._count(r, bucket, prefix, besides=self._marker(r)) is not None:
                    return Observed(
                        {**attrs, "marked": False},
                        foreign=True,
                        whose="not made by airflow-infra, and it holds objects",
                    )
                if prior is None:
                    return None
        found = Owner.from_marker(body.decode(errors="replace")) if body is not None else None
        v = judge(self.owner, found, recorded=prior is not None)
        return Observed({**attrs, "marked": v.marked}, foreign=not v.ours, whose=v.whose)

    def mark(self, r: Resource) -> None:
        self.s3.put_object(Bucket=r.attrs["bucket"], Key=self._marker(r), Body=(self.owner.marker() + "\n").encode())

    def warnings(self, observed: Observed) -> list[str]:
        return []

    def create(self, r: Resource) -> Observed:
        existing = self.read(r, None)
        if existing is not None and existing.foreign:
            raise ForeignResource(
                f"{r.address}: s3://{r.attrs['bucket']}/{r.attrs['prefix']} exists, {existing.whose}: "
                "choose another [bucket] prefix, or take it over on purpose with `airflow-infra import`"
            )
        try:
            with aws(r.address, "create"):
                self.mark(r)
        except NoSuchBucket:
            raise ProviderError(
                f"{r.address}: the shared bucket {r.attrs['bucket']!r} does not exist: create it "
                "first, or leave [bucket] prefix empty to have a bucket of the project's own"
            ) from None
        return Observed(dict(r.attrs))

    def update(self, r: Resource, prior: Observed) -> Observed:
        with translated(r.address, "update"):
            self.mark(r)
        return read_back(self, r, prior)

    def holds_data(self, r: Resource, observed: Observed) -> str | None:
        return self._count(r, r.attrs["bucket"], r.attrs["prefix"], besides=self._marker(r))  # the marker is no data

    def backup(self, r: Resource, observed: Observed, dest: Path) -> str:
        return self._backup(r, r.attrs["bucket"], r.attrs["prefix"], dest, besides=self._marker(r))

    def delete(self, r: Resource, prior: Observed, *, force: bool = False) -> None:
        bucket, prefix = r.attrs["bucket"], r.attrs["prefix"]
        try:
            with aws(r.address, "delete"):
                self._delete_prefix(r, bucket, prefix, force=force)
        except (NoSuchBucket, _Gone):
            return

    def _delete_prefix(self, r: Resource, bucket: str, prefix: str, *, force: bool) -> None:
        if force:
            self._empty(r, bucket, prefix, besides=self._marker(r))
            left = [v for v in self._versions(bucket, prefix) if v["Key"] != self._marker(r)]
            if left:
                raise ProviderError(
                    f"{r.address}: s3://{bucket}/{prefix} received new objects while it was "
                    f"emptied ({left[0]['Key']!r}, ...); they were kept: stop what writes there "
                    "and run again"
                )
            for v in self._versions(bucket, self._marker(r)):
                if v["Key"] == self._marker(r):  # every version of it, by id: no delete marker left
                    self.s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
        else:
            self.s3.delete_object(Bucket=bucket, Key=self._marker(r))
