"""Checksummed, resumable, retried HTTP downloads (the FlyWire release files are 1 MB and 852 MB).

Why this exists: the original benchmark code streams the Zenodo files once with ``urllib`` and trusts
any file of non-zero size (``docs/departures.md#downloads``). A dropped connection then either crashes
the run or, worse, leaves a truncated file that every later run reuses. Here:

* a file is accepted only if its size and MD5 match the published values (:class:`ExpectedFile`);
  a cached file that does not match is never trusted: it is deleted and fetched again;
* bytes go to ``<dest>.part`` and reach ``dest`` only through one atomic ``os.replace`` after
  verification, so ``dest`` is either absent or complete and correct;
* transient failures (HTTP 5xx, connection resets, timeouts, short reads) are retried with exponential
  backoff, and each new attempt resumes the ``.part`` with an HTTP ``Range`` request instead of starting
  over; a server that ignores ``Range`` (answers 200) is handled by restarting from zero;
* permanent failures (4xx other than 416) stop at once, because retrying a wrong URL only wastes time;
* a complete download that fails verification is retried (from zero) only if its bytes came from more
  than one response, since the stale partial file may be what is wrong. A file received whole in one
  response that still does not match is what the server serves: downloading it again would give the same
  bytes, so :func:`fetch` stops with one error naming the file, the URL, and the expected and actual size
  and MD5.

What may be left behind after a failure: never ``dest``, and never a ``.part`` that failed verification.
A ``.part`` from a transfer that was cut short (all attempts exhausted by timeouts, or the process was
killed) is kept on purpose: its bytes passed no check yet but none contradicts one either, and the next
run resumes it. If those bytes turn out wrong, the final MD5 check catches it and the file is refetched.

Only the standard library is used (``urllib.request``), plus ``tqdm`` for the progress bar.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..provenance import file_digest

log = logging.getLogger(__name__)

_MAX_BACKOFF_SECONDS = 60.0   # a long outage is better served by a later rerun than by hour-long sleeps
_USER_AGENT = "connectome-bpu (+https://zenodo.org; checksummed resumable download)"
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class DownloadError(RuntimeError):
    """A file could not be obtained: names the URL, the destination, the attempts and the last reason.

    ``mismatch`` is set (to "expected ...; got ...") when the server delivered a complete file whose size
    or MD5 differs from the expected one, i.e. when retrying cannot help; it is None for network failures.
    """

    def __init__(self, message: str, *, url: str, dest: Path, mismatch: str | None = None):
        super().__init__(message)
        self.url = url
        self.dest = dest
        self.mismatch = mismatch


@dataclass(frozen=True)
class ExpectedFile:
    """What a downloaded file must look like. ``None`` skips that check (used only for unpinned files)."""

    name: str
    size: int | None
    md5: str | None


class _AttemptFailed(Exception):
    """One attempt did not produce a verified file; ``discard`` says whether the ``.part`` is poisoned."""

    def __init__(self, reason: str, *, discard: bool, retry: bool = True, mismatch: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.discard = discard
        self.retry = retry
        self.mismatch = mismatch


def md5_file(path: str | Path) -> str:
    """Hex MD5 of a file, streamed (Zenodo publishes MD5s, so that is the digest to compare with)."""
    return file_digest(path, "md5")


def verify(path: str | Path, expected: ExpectedFile) -> str | None:
    """None if ``path`` has the expected size and MD5, else why not (size first: it costs no read)."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist"
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        return f"size {size} != {expected.size} bytes"
    if expected.md5 is not None:
        actual = md5_file(path)
        if actual != expected.md5.lower():
            return f"md5 {actual} != {expected.md5.lower()}"
    return None


def describe_mismatch(path: str | Path, expected: ExpectedFile) -> str:
    """``expected S bytes, md5 M; got S' bytes, md5 M'`` for a file that failed :func:`verify`.

    Unlike :func:`verify` this always reads the file, so that an error can show both values side by side.
    """
    path = Path(path)
    size = f"{expected.size} bytes" if expected.size is not None else "any size"
    md5 = f"md5 {expected.md5.lower()}" if expected.md5 is not None else "any md5"
    return f"expected {size}, {md5}; got {path.stat().st_size} bytes, md5 {md5_file(path)}"


def fetch(url: str, dest: str | Path, expected: ExpectedFile, *, retries: int = 5, backoff_seconds: float = 1.0,
          timeout: float = 60.0, chunk_bytes: int = 1 << 20, progress: bool = True) -> Path:
    """Make ``dest`` a verified copy of ``url`` and return it; raise :class:`DownloadError` otherwise.

    An existing ``dest`` that verifies is returned without touching the network; one that does not is
    deleted first and downloaded again (it is never trusted). ``retries`` is the number
    of retries after the first attempt (``retries + 1`` attempts in all); attempt ``k`` (from 0) that fails
    transiently is followed by a pause of ``backoff_seconds * 2**k`` seconds, capped at one minute.
    ``timeout`` bounds each blocking socket operation, not the whole transfer, so a slow but live
    connection is never cut. The progress bar is shown only on a terminal (``progress=False`` hides it).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    if dest.exists():
        problem = verify(dest, expected)
        if problem is None:
            log.info("%s: cached copy %s verifies; not downloading", expected.name, dest)
            return dest
        log.warning("%s: cached copy %s does not verify (%s); deleting it and downloading again",
                    expected.name, dest, problem)
        dest.unlink()

    attempts = retries + 1
    reason, mismatch = "no attempt made", None
    for attempt in range(attempts):
        try:
            _attempt(url, part, expected, timeout=timeout, chunk_bytes=chunk_bytes, progress=progress)
            os.replace(part, dest)
            log.info("%s: downloaded and verified %s", expected.name, dest)
            return dest
        except _AttemptFailed as failure:
            reason, mismatch = failure.reason, failure.mismatch
            if failure.discard:
                part.unlink(missing_ok=True)
            if not failure.retry:
                attempts = attempt + 1
                break
        if attempt + 1 < attempts:
            pause = min(backoff_seconds * 2 ** attempt, _MAX_BACKOFF_SECONDS)
            log.warning("%s: attempt %d of %d failed (%s); retrying in %.2f s%s", expected.name, attempt + 1,
                        attempts, reason, pause, " (resuming the partial file)" if part.exists() else "")
            time.sleep(pause)
    if mismatch is not None:
        raise DownloadError(f"{expected.name}: the file served at {url} does not match the expected checksum "
                            f"({mismatch}; after {attempts} attempt(s)). Nothing was saved to {dest}. The server "
                            f"serves different bytes from those expected: check that the URL points to this "
                            f"file and that the expected size and MD5 are the published ones",
                            url=url, dest=dest, mismatch=mismatch)
    kept = (f"; the partial file {part} ({part.stat().st_size} bytes) is kept and a later run resumes it"
            if part.exists() else "")
    raise DownloadError(f"could not download {expected.name} from {url} to {dest} after {attempts} attempt(s); "
                        f"last error: {reason}{kept}", url=url, dest=dest)


def _attempt(url: str, part: Path, expected: ExpectedFile, *, timeout: float, chunk_bytes: int,
             progress: bool) -> None:
    """One try: resume or start ``part``, stream the body into it, then verify it completely.

    Returns only when ``part`` verifies; every other outcome is an :class:`_AttemptFailed` saying whether
    the part must be discarded and whether retrying can help.
    """
    offset = part.stat().st_size if part.exists() else 0
    if expected.size is not None and offset >= expected.size:
        # A previous run may have received everything but died before the rename: check locally first.
        if offset == expected.size and verify(part, expected) is None:
            return
        log.warning("%s: partial file %s has %d bytes and does not verify against %s; starting over",
                    expected.name, part, offset, expected)
        part.unlink()
        offset = 0
    start, total = _transfer(url, part, expected, offset, timeout=timeout, chunk_bytes=chunk_bytes,
                             progress=progress)
    size = part.stat().st_size
    server_done = total is not None and size >= total   # the server announced no more bytes than these
    if expected.size is not None and size < expected.size and not server_done:
        raise _AttemptFailed(f"short read: have {size} of {expected.size} bytes", discard=False)
    if verify(part, expected) is not None:
        mismatch = describe_mismatch(part, expected)
        # Bytes from one response starting at zero are what the server serves: retrying gives them again.
        # A resumed file may be wrong only because of its stale first part, so one from zero may still work.
        raise _AttemptFailed(f"downloaded file failed verification ({mismatch})", discard=True,
                             retry=start > 0, mismatch=mismatch)


def _transfer(url: str, part: Path, expected: ExpectedFile, offset: int, *, timeout: float, chunk_bytes: int,
              progress: bool) -> tuple[int, int | None]:
    """Stream the body of ``url`` into ``part`` from byte ``offset`` (0 = whole file).

    Returns ``(start, total)``: the byte at which this response's body was written (0 when the server
    sent the whole file) and the file's full size as the server announced it (None if it did not).
    """
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            # The server has nothing after our offset: the part is complete (verified by the caller) or is
            # longer than the file, in which case it cannot be repaired by resuming.
            if expected.size is not None and offset != expected.size:
                raise _AttemptFailed(f"HTTP 416 for a resume at byte {offset}: the partial file does not "
                                     f"match the server's; restarting from zero", discard=True) from error
            return offset, None
        retry = error.code >= 500 or error.code in (408, 429)
        raise _AttemptFailed(f"HTTP {error.code} {error.reason}", discard=False, retry=retry) from error
    except (OSError, http.client.HTTPException) as error:   # URLError, refused, reset, timeout
        raise _AttemptFailed(f"connection failed: {_describe(error)}", discard=False) from error

    with response:
        status = response.status
        if status == 206:
            start = _range_start(response.headers.get("Content-Range"))
            if start != offset:
                raise _AttemptFailed(f"server answered a resume at byte {offset} with Content-Range "
                                     f"{response.headers.get('Content-Range')!r}; restarting from zero",
                                     discard=True)
            mode = "ab"
        elif status == 200:
            if offset:
                log.warning("%s: server ignored the Range request; downloading from the start", expected.name)
            offset, mode = 0, "wb"
        else:
            raise _AttemptFailed(f"unexpected HTTP status {status}", discard=False)
        announced = response.headers.get("Content-Length")
        announced = int(announced) if announced and announced.isdigit() else None
        total = _range_total(response.headers.get("Content-Range")) if status == 206 else announced

        received = 0
        bar = tqdm(total=expected.size, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=expected.name, disable=None if progress else True, leave=False)
        with bar, part.open(mode) as handle:
            while True:
                try:
                    chunk = response.read(chunk_bytes)
                except (OSError, http.client.HTTPException) as error:
                    raise _AttemptFailed(f"transfer interrupted after {offset + received} bytes: "
                                         f"{_describe(error)}", discard=False) from error
                if not chunk:
                    break
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if announced is not None and received < announced:
            raise _AttemptFailed(f"connection closed after {received} of {announced} announced bytes "
                                 f"(file at {offset + received} bytes)", discard=False)
    return offset, total


def _range_start(header: str | None) -> int | None:
    """First byte position of a ``Content-Range: bytes a-b/total`` header (None if absent or malformed)."""
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(1)) if match else None


def _range_total(header: str | None) -> int | None:
    """Full size in a ``Content-Range: bytes a-b/total`` header (None if absent, malformed or ``*``)."""
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(3)) if match and match.group(3).isdigit() else None


def _describe(error: BaseException) -> str:
    """``URLError`` hides the real cause in ``.reason``; show it, with the exception type for context."""
    inner = getattr(error, "reason", None)
    if isinstance(inner, BaseException):
        error = inner
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
