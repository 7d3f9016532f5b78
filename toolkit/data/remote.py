"""Data sources: a local folder, or an s3:// prefix read on demand through a bounded local cache.

    src = open_source("s3://fcp-indi/data/Projects/HBN/BIDS_EEG/cmi_bids_R1", settings, cache)
    src.glob("sub-*/eeg/*_task-contrastChangeDetection*_eeg.set")  # relative keys, sorted
    src.read_text("participants.tsv")
    src.fetch("sub-X/eeg/sub-X_task-..._eeg.set")                   # a local Path

Remote files land in `<cache_dir>/remote/<bucket>/<key>` and are reused by later calls and later
runs without fetching the body again (see toolkit.data.file_cache for eviction).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol

from pydantic import Field

from toolkit.config.schema import StrictModel
from toolkit.config.settings import S3Settings, Settings
from toolkit.data.file_cache import FileCache, human_size
from toolkit.data.sources import local_root
from toolkit.errors import DataError

log = logging.getLogger(__name__)
# One line per fetched file is the progress report of non-interactive runs, so let it through
# even where the root logger only passes warnings.
log.setLevel(logging.INFO)

CHUNK_BYTES = 8 * 2**20  # one ranged GET per chunk: retried alone, bounded memory
BAR_MIN_BYTES = 2**20  # smaller files (events.tsv) get no bar and a debug-level line
S3FS_BODY_RETRIES = 2  # s3fs's own tries for a response body cut off mid-read


class CacheConfig(StrictModel):
    """The local cache of remote files (recipe key `data.cache`)."""

    max_gb: float = Field(20.0, gt=0)


class Source(Protocol):
    """Where a dataset's files come from; keys are POSIX paths relative to the root."""

    url: str

    def glob(self, pattern: str) -> list[str]:
        """Relative keys matching `pattern` (`*` stays inside one folder, `**` crosses), sorted."""
        ...

    def read_text(self, rel: str) -> str:
        """The text of a small file."""
        ...

    def fetch(self, rel: str) -> Path:
        """A local path to the file (downloaded into the cache first if remote)."""
        ...

    def fingerprint(self, rel: str) -> str:
        """A cheap identity of the file's content (etag/size/mtime), for cache keys."""
        ...


def open_source(source: str, settings: Settings, cache: CacheConfig | None = None) -> Source:
    """`s3://bucket/prefix` -> S3Source; anything else -> LocalSource (see local_root)."""
    if source.startswith("s3://"):
        return S3Source(source, settings, cache or CacheConfig())
    return LocalSource(local_root(source, settings))


def _clean_rel(rel: str) -> str:
    """A relative POSIX key without `.`/`..` parts."""
    parts = [p for p in PurePosixPath(rel).parts if p != "."]
    if not parts or rel.startswith("/") or ".." in parts:
        raise DataError(f"{rel!r}: not a relative file name inside data.source")
    return "/".join(parts)


class LocalSource:
    """A dataset in a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def glob(self, pattern: str) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.glob(pattern) if p.is_file()
        )

    def read_text(self, rel: str) -> str:
        return self.fetch(rel).read_text(encoding="utf-8")

    def fetch(self, rel: str) -> Path:
        path = self.root / _clean_rel(rel)
        if not path.is_file():
            raise DataError(f"{path}: no such file in data.source {self.root}")
        return path

    def fingerprint(self, rel: str) -> str:
        st = self.fetch(rel).stat()
        return f"{st.st_size}-{st.st_mtime_ns}"


@dataclass(frozen=True)
class _Object:
    size: int
    mtime: float  # seconds since the epoch (the object's LastModified)
    etag: str


def _object(info: dict[str, Any]) -> _Object:
    modified = info.get("LastModified")
    return _Object(
        size=int(info["size"]),
        mtime=modified.timestamp() if hasattr(modified, "timestamp") else 0.0,
        etag=str(info.get("ETag", "")).strip('"'),
    )


def make_filesystem(s3: S3Settings) -> Any:
    """An s3fs filesystem for these settings: anonymous by default, bounded timeouts, botocore's
    standard retry mode (5xx, throttling, connection errors; exponential backoff with jitter)."""
    import s3fs

    client_kwargs: dict[str, Any] = {}
    if s3.region:
        client_kwargs["region_name"] = s3.region
    if s3.endpoint_url:
        client_kwargs["endpoint_url"] = s3.endpoint_url
    fs = s3fs.S3FileSystem(
        anon=s3.anon,
        client_kwargs=client_kwargs,
        config_kwargs={
            "connect_timeout": s3.connect_timeout,
            "read_timeout": s3.read_timeout,
            # total_max_attempts counts the first try; botocore's max_attempts would not
            "retries": {"total_max_attempts": s3.max_attempts, "mode": "standard"},
        },
        skip_instance_cache=True,
    )
    fs.retries = S3FS_BODY_RETRIES
    return fs


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    import aiohttp
    import botocore.exceptions
    from fsspec.exceptions import FSTimeoutError

    return (
        botocore.exceptions.ConnectionError,  # refused, DNS, connect timeout
        botocore.exceptions.HTTPClientError,  # read timeout, connection closed
        aiohttp.ClientConnectionError,
        FSTimeoutError,
        asyncio.TimeoutError,
        ConnectionError,
        TimeoutError,
    )


class S3Source:
    """A dataset under an s3:// prefix; files are fetched once into a size-bounded local cache.

    The listing is read once per instance (on the first glob) and then answers glob, fingerprint
    and missing-key checks without further requests. A cached file is reused without any request
    when no listing has been read, and while its size and mtime match the listing when one has."""

    def __init__(self, url: str, settings: Settings, cache: CacheConfig, fs: Any = None) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise DataError(f"data.source={url}: no bucket (expected s3://bucket/prefix)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        s3 = settings.s3
        self.endpoint = s3.endpoint_url or f"https://s3.{s3.region or 'us-east-1'}.amazonaws.com"
        self._anon = s3.anon
        self._fs = fs if fs is not None else make_filesystem(s3)
        self._cache = FileCache(Path(settings.cache_dir) / "remote", int(cache.max_gb * 1e9))
        self._listing: dict[str, _Object] | None = None
        self._heads: dict[str, _Object] = {}

    # -- the Source interface ------------------------------------------------------------------

    def glob(self, pattern: str) -> list[str]:
        from fsspec.utils import glob_translate

        regex = re.compile(glob_translate(pattern.strip("/")))
        return sorted(rel for rel in self._objects() if regex.match(rel))

    def read_text(self, rel: str) -> str:
        return self.fetch(rel).read_text(encoding="utf-8")

    def fetch(self, rel: str) -> Path:
        rel = _clean_rel(rel)
        key = self._path(rel)
        known = self._known(rel)
        hit = (
            self._cache.get(key, known.size, known.mtime or None) if known else self._cache.get(key)
        )
        if hit is not None:
            return hit
        meta = known or self._head(rel)
        url = self._url(rel)
        with _progress(url, meta.size) as advance:
            return self._cache.put(
                key,
                meta.size,
                lambda fh: self._download(rel, meta.size, fh, advance),
                mtime=meta.mtime or None,
            )

    def fingerprint(self, rel: str) -> str:
        rel = _clean_rel(rel)
        meta = self._known(rel) or self._head(rel)
        return f"{meta.etag}-{meta.size}-{int(meta.mtime)}"

    # -- helpers -------------------------------------------------------------------------------

    def _path(self, rel: str = "") -> str:
        return "/".join(p for p in (self.bucket, self.prefix, rel) if p)

    def _url(self, rel: str = "") -> str:
        return f"s3://{self._path(rel)}"

    def _objects(self) -> dict[str, _Object]:
        """Every object under the prefix (one paginated listing per instance)."""
        if self._listing is None:
            root = self._path()
            with self._errors(self.url):
                found = self._fs.find(root, detail=True)
            listing = {
                name[len(root) + 1 :]: _object(info)
                for name, info in found.items()
                if info.get("type") != "directory" and name.startswith(root + "/")
            }
            if not listing:
                raise DataError(
                    f"{self.url}: no files under this prefix on {self.endpoint}; check "
                    "data.source (bucket, release folder)"
                )
            self._listing = listing
        return self._listing

    def _known(self, rel: str) -> _Object | None:
        """What a listing or an earlier HEAD says about `rel` (missing from a listing: error)."""
        if self._listing is not None:
            if rel not in self._listing:
                raise self._missing(self._url(rel))
            return self._listing[rel]
        return self._heads.get(rel)

    def _head(self, rel: str) -> _Object:
        if rel not in self._heads:
            with self._errors(self._url(rel)):
                info = self._fs.info(self._path(rel))
            if info.get("type") == "directory":
                raise self._missing(self._url(rel))
            self._heads[rel] = _object(info)
        return self._heads[rel]

    def _download(self, rel: str, size: int, fh: BinaryIO, advance: Callable[[int], None]) -> None:
        """Stream the object into `fh` in ranged GETs of CHUNK_BYTES (remote failures become
        DataErrors here; local write errors are the cache's to report)."""
        path, offset = self._path(rel), 0
        while offset < size:
            end = min(offset + CHUNK_BYTES, size)
            with self._errors(self._url(rel)):
                data = self._fs.cat_file(path, start=offset, end=end)
            if len(data) != end - offset:
                raise DataError(
                    f"{self._url(rel)}: got {len(data)} of {end - offset} bytes at offset "
                    f"{offset}; did the object change? Run again"
                )
            fh.write(data)
            offset = end
            advance(len(data))

    def _missing(self, url: str) -> DataError:
        return DataError(
            f"{url}: not found on {self.endpoint}; check data.source (bucket, release folder) "
            "and the file name"
        )

    @contextlib.contextmanager
    def _errors(self, url: str) -> Iterator[None]:
        """Turn s3fs/botocore failures into one DataError line naming the URL or endpoint."""
        import botocore.exceptions

        try:
            yield
        except DataError:
            raise
        except FileNotFoundError:
            raise self._missing(url) from None
        except PermissionError as exc:
            hint = (
                "the bucket may not be public: set TOOLKIT_S3__ANON=false and AWS credentials"
                if self._anon
                else "check the AWS credentials"
            )
            raise DataError(f"{url}: access denied ({exc}); {hint}") from None
        except botocore.exceptions.NoCredentialsError:
            raise DataError(
                f"{url}: no AWS credentials found; set them, or TOOLKIT_S3__ANON=true for a "
                "public bucket"
            ) from None
        except _unreachable_errors() as exc:
            raise DataError(
                f"cannot reach S3 endpoint {self.endpoint} while reading {url} "
                f"({type(exc).__name__}: {exc}); check the network or TOOLKIT_S3__ENDPOINT_URL"
            ) from None
        except OSError as exc:  # s3fs's translation of 5xx/throttling left after retries
            raise DataError(
                f"{url}: S3 request failed after retries on {self.endpoint} ({exc}); "
                "try again later"
            ) from None


@contextlib.contextmanager
def _progress(url: str, total: int) -> Iterator[Callable[[int], None]]:
    """Report one download: a rich bar on an interactive stderr, else one log line at the end."""
    start = time.perf_counter()
    name = url.rsplit("/", 1)[-1]
    if sys.stderr.isatty() and total >= BAR_MIN_BYTES:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns = (
            TextColumn("fetch {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(name, total=total)
            yield lambda n: bar.advance(task, n)
    else:
        yield lambda n: None
    seconds = max(time.perf_counter() - start, 1e-6)
    # Sidecars (events.tsv, thousands per release) log at debug level; data files at info,
    # unless a bar already showed them.
    big = total >= BAR_MIN_BYTES
    level = logging.INFO if big and not sys.stderr.isatty() else logging.DEBUG
    speed = human_size(total / seconds)
    log.log(level, "fetched %s (%s in %.1f s, %s/s)", url, human_size(total), seconds, speed)
