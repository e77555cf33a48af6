"""Fetch, verify and extract the real datasets: one implementation shared by all of them.

``download_dataset(name, root)`` does, for each file of ``SOURCES[name]`` (wildcat/data/sources.py):

1. skip it when it is already in place (a completion marker ``<root>/.wildcat/<file>.done``, or
   every path it ``provides`` exists, e.g. a tree extracted by hand);
2. find it: the ``archive=`` argument (``--archive FILE``), else ``<root>/<filename>`` (an archive
   placed there by hand), else download it:
   stream to ``<root>/<filename>.part`` with a tqdm bar, resume an interrupted transfer with an HTTP
   ``Range`` request, retry transient errors with exponential backoff, then try the next mirror;
3. verify every digest of the table (MD5 / SHA1; a downloaded file that fails is deleted and the
   error says so; a file the user placed is never deleted) and rename ``.part`` atomically. A
   ``checksums=`` file (``--checksums FILE``: ``{"<filename>": {"md5", "sha1", "size_bytes"}}``)
   replaces the table's digests of the files it lists, on every path (a re-packed copy of an
   archive that the user trusts);
4. extract (tar / zip) after checking every member: absolute paths, ``..`` components, links and
   device files are refused before anything is written; plain files are copied atomically;
   ``<root>/.wildcat/<file>.extracting`` marks an extraction in progress and becomes ``.done``,
   which records the digests verified (``"checksums"``: ``"official"`` or the user's entry).

A tree found in place without a marker (extracted by hand) is verified as far as it can be: its
``provides`` paths exist, and its splits have the published image counts
(``sources.EXPECTED_COUNTS``); its marker then says ``"not checksummed"``.
:func:`dataset_checksums` sums the markers of a dataset up for ``--list`` and for the provenance
of the runs that read it (wildcat.engine.provenance).

Standard library only for the transfer (``urllib``), hashing (``hashlib``) and extraction
(``tarfile`` with the ``"data"`` filter where available, ``zipfile``). torchvision's helpers are
not used here: ``download_url`` cannot resume, and ``extract_archive`` calls ``extractall``
without a filter (no protection against ``..`` members or links).

Errors a user can fix are :class:`DownloadError` subclasses of ``wildcat.errors.WildcatError``
with a one-line message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from wildcat.data import (
    DatasetCountWarning,
    DatasetFormatError,
    DatasetNotFoundError,
    UnknownSplitError,
    get_dataset,
    sources,
)
from wildcat.data.sources import DatasetSource, RemoteFile
from wildcat.errors import WildcatError
from wildcat.io import atomic_path, atomic_write_text

__all__ = [
    "DownloadError",
    "ChecksumError",
    "UnsafeArchiveError",
    "download_dataset",
    "list_datasets",
    "dataset_status",
    "dataset_checksums",
    "checksums_summary",
    "interrupted_extractions",
    "file_digest",
    "safe_extract",
]

PathLike = str | os.PathLike

#: Folder (under root) of the completion markers.
MARKER_DIR = ".wildcat"
#: Seconds to wait before retry 1, 2, ... of one URL (transient errors only).
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
#: Socket timeout of one request, seconds.
TIMEOUT_S: float = 60.0
CHUNK_BYTES = 1 << 20
USER_AGENT = "wildcat-bench (https://github.com/; python urllib)"
#: The ``checksums`` of a marker whose file had the digests of the sources table.
OFFICIAL = "official"
#: The ``checksums`` of a marker whose tree was found in place (extracted by hand): no digest seen.
NOT_CHECKSUMMED = "not checksummed"
#: The hex digest lengths of the keys of a ``--checksums`` entry (with the optional ``size_bytes``).
_DIGEST_LENGTHS = {"md5": 32, "sha1": 40}
#: Splits of ``sources.EXPECTED_COUNTS`` made with files of another download (SBD; the evaluation
#: server's VOC2012test.tar): not counted when a voc2012 tree is found in place.
_SPLITS_OF_OTHER_FILES = frozenset({("voc2012", "train_aug"), ("voc2012", "test")})


class DownloadError(WildcatError, RuntimeError):
    """A file could not be fetched, verified or extracted (one-line message, with the fix)."""


class ChecksumError(DownloadError):
    """A file does not have the digest of the sources table."""


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the target folder, or is a link or a device."""


#: errno values of local disk problems (not worth retrying the network for).
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM}


class _Transient(Exception):
    """A failure worth retrying (connection reset, timeout, 5xx, short read)."""


class _Permanent(Exception):
    """A failure of this URL that retrying will not fix (404, DNS failure)."""


# -- small helpers ---------------------------------------------------------------------------
def _human_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "?"
    size = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size_bytes} B"


def _marker(root: Path, remote: RemoteFile, state: str) -> Path:
    return root / MARKER_DIR / f"{remote.filename}.{state}"


def file_digest(path: PathLike, algorithm: str, progress: bool = False) -> str:
    """Hex digest (a :mod:`hashlib` name: ``"md5"``, ``"sha1"``, ``"sha256"``) of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    path = Path(path)
    with open(path, "rb") as handle, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                           desc=f"{algorithm} {path.name}", disable=not progress, leave=False) as bar:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _checksum_problem(path: Path, remote: RemoteFile, progress: bool) -> str | None:
    """None when ``path`` matches the table, else what differs (size or digest)."""
    size = path.stat().st_size
    if remote.size_bytes is not None and size != remote.size_bytes:
        return f"size {size} bytes, expected {remote.size_bytes}"
    for algorithm in ("md5", "sha1"):
        expected = getattr(remote, algorithm)
        if expected:
            actual = file_digest(path, algorithm, progress)
            if actual.lower() != expected.lower():
                return f"{algorithm.upper()} {actual}, expected {expected}"
    return None


def _fix_hint(name: str, root: Path, remote: RemoteFile) -> str:
    return (f"download it by hand (see docs/datasets.md) and run `wildcat download {name} --root {root} "
            f"--archive FILE`, or put it at {root / remote.filename}")


# -- the digests each file is verified against: the table's, or a --checksums file's ----------------
@dataclass(frozen=True)
class _Expected:
    """One file of a dataset with the digests it is verified against: ``remote`` is the table's
    entry, with the user's MD5 / SHA1 / size when a ``--checksums`` file lists it; ``record`` is
    what its marker stores (:data:`OFFICIAL`, or the user's entry with the file's path and sha256)."""

    remote: RemoteFile
    record: str | dict[str, Any] = OFFICIAL

    @property
    def origin(self) -> str:
        """Whose digests these are, for the error messages."""
        if self.record == OFFICIAL:
            return f"the official {self.remote.filename}"
        return f"the digests of {self.remote.filename} in {self.record['file']}"

    @property
    def fix(self) -> str:
        """How to get past a file that does not have these digests (the end of an error message)."""
        if self.record == OFFICIAL:
            return " (for a copy of your own, give its digests with --checksums FILE: docs/datasets.md)"
        return f" (correct the digests in {self.record['file']}, or give another file)"


def _checksums_problem(name: str, source: DatasetSource, table: Any) -> str | None:
    """What is wrong with the parsed ``--checksums`` file ``table`` (None when it is well formed)."""
    if not isinstance(table, dict) or not table:
        return "not a JSON object with one entry per file"
    filenames = [f.filename for f in source.files]
    for filename, entry in table.items():
        if filename not in filenames:
            return f"{filename!r} is not a file of {name}"
        if not isinstance(entry, dict):
            return f"the entry of {filename} is not a JSON object"
        if all(entry.get(key) is None for key in _DIGEST_LENGTHS):
            return f"the entry of {filename} has neither md5 nor sha1"
        unknown = [key for key in entry if key not in (*_DIGEST_LENGTHS, "size_bytes")]
        if unknown:
            return f"the entry of {filename} has the unknown key {unknown[0]!r}"
        for key, length in _DIGEST_LENGTHS.items():
            value = entry.get(key)
            if value is not None and not (isinstance(value, str) and re.fullmatch(f"[0-9a-fA-F]{{{length}}}", value)):
                return f"the {key} of {filename} is not {length} hex digits: {value!r}"
        size = entry.get("size_bytes")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            return f"the size_bytes of {filename} is not a number of bytes: {size!r}"
    return None


def _expected_files(name: str, source: DatasetSource, checksums: PathLike | None) -> list[_Expected]:
    """The files of ``source``, each with the digests it is verified against (see :class:`_Expected`).

    Raises:
        DownloadError: ``checksums`` cannot be read, is not JSON, names a file that is not one of
            the dataset's, or has an entry without md5 / sha1 (one line, with the expected format).
    """
    if checksums is None:
        return [_Expected(remote) for remote in source.files]
    path = Path(checksums).expanduser().resolve()
    form = ('{"<file>": {"md5": "<hex>", "sha1": "<hex>", "size_bytes": <int>}, ...} (md5 or sha1 required) '
            f"for {name}'s files: {', '.join(f.filename for f in source.files)}")
    try:
        table = json.loads(path.read_bytes())
    except OSError as error:
        raise DownloadError(f"{name}: cannot read --checksums {path} ({error.strerror or error}); give a JSON file "
                            f"{form}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DownloadError(f"{name}: --checksums {path} is not JSON ({error}); it must be {form}") from None
    problem = _checksums_problem(name, source, table)
    if problem is not None:
        raise DownloadError(f"{name}: --checksums {path}: {problem}; it must be {form}")
    sha256 = file_digest(path, "sha256")
    expected = []
    for remote in source.files:
        entry = table.get(remote.filename)
        if entry is None:
            expected.append(_Expected(remote))
            continue
        user = replace(remote, md5=entry.get("md5"), sha1=entry.get("sha1"), size_bytes=entry.get("size_bytes"))
        expected.append(_Expected(user, {"file": str(path), "sha256": sha256, **entry}))
    return expected


# -- HTTP with Range resume --------------------------------------------------------------------
def _candidate_urls(remote: RemoteFile) -> list[str]:
    mirror = os.environ.get(sources.MIRROR_ENV, "").strip()
    urls = [f"{mirror.rstrip('/')}/{remote.filename}"] if mirror else []
    return urls + [u for u in remote.urls if u not in urls]


def _fetch_once(url: str, part: Path, progress: bool) -> None:
    """One request: append to ``part`` from its current size (Range) or start over."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the .part is complete (or too long)
            return
        if error.code in (408, 425, 429) or error.code >= 500:
            raise _Transient(f"HTTP {error.code}") from None
        raise _Permanent(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, socket.gaierror):
            raise _Permanent(f"host not found ({error.reason})") from None
        raise _Transient(str(error.reason)) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
        raise _Transient(f"{type(error).__name__}: {error}") from None

    with response:
        if offset and response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                part.unlink()
                raise _Transient(f"server answered range {content_range!r} for bytes={offset}-: restarting")
            mode = "ab"
        else:  # 200: the server ignored Range (or there was none): start over
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = 0
        try:
            with open(part, mode) as handle, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                                  unit_divisor=1024, desc=part.name[: -len(".part")],
                                                  disable=not progress) as bar:
                while True:
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    handle.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
            if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
                raise DownloadError(f"cannot write {part}: {error.strerror}; fix it and run the command again "
                                    "(the download resumes)") from None
            raise _Transient(f"connection lost after {offset + received} bytes ({type(error).__name__})") from None
    if total is not None and offset + received < total:
        raise _Transient(f"connection closed after {offset + received} of {total} bytes")


def _download(url: str, part: Path, progress: bool) -> None:
    """Fetch ``url`` into ``part``, resuming and retrying transient errors with backoff."""
    delays = list(RETRY_DELAYS_S)
    while True:
        try:
            _fetch_once(url, part, progress)
            return
        except _Transient as error:
            if not delays:
                raise _Permanent(f"{error} (gave up after {len(RETRY_DELAYS_S) + 1} attempts)") from None
            delay = delays.pop(0)
            if progress:
                tqdm.write(f"{part.name}: {error}; retrying in {delay:g} s")
            time.sleep(delay)


def _fetch(name: str, root: Path, expected: _Expected, progress: bool) -> Path:
    """Download ``expected.remote`` to ``<root>/<filename>`` (verified), trying every URL in turn."""
    remote = expected.remote
    target = root / remote.filename
    part = root / f"{remote.filename}.part"
    failures, bad_checksum = [], False
    for url in _candidate_urls(remote):
        try:
            _download(url, part, progress)
        except _Permanent as error:
            failures.append(f"{url}: {error}")
            continue
        problem = _checksum_problem(part, remote, progress)
        if problem is not None:
            part.unlink()
            bad_checksum = True
            failures.append(f"{url}: {problem}")
            continue
        os.replace(part, target)
        return target
    if bad_checksum:
        raise ChecksumError(f"{name}: {remote.filename} does not match {expected.origin} ({'; '.join(failures)}); "
                            f"the bad download was deleted: run the command again, or {_fix_hint(name, root, remote)}"
                            f"{expected.fix}")
    raise DownloadError(f"{name}: could not download {remote.filename} ({'; '.join(failures)}): "
                        f"{_fix_hint(name, root, remote)}")


# -- extraction --------------------------------------------------------------------------------
def _member_problem(name: str, dest: Path) -> str | None:
    """Why member ``name`` must not be extracted into ``dest`` (None when it is safe)."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "'..' in path"
    target = (dest / posix).resolve()
    if target != dest.resolve() and dest.resolve() not in target.parents:
        return "outside the target folder"
    return None


def _check_members(archive: Path, dest: Path, members: Iterable[tuple[str, str | None]]) -> None:
    for member_name, kind_problem in members:
        problem = kind_problem or _member_problem(member_name, dest)
        if problem:
            raise UnsafeArchiveError(f"refusing to extract {archive.name}: member {member_name!r} is unsafe ({problem}); "
                                     "nothing was extracted. This is not the official archive: delete it and download again")


def safe_extract(archive: PathLike, dest: PathLike, progress: bool = False) -> int:
    """Extract a tar (any compression) or zip archive into ``dest`` after checking every member.

    Returns:
        The number of members extracted.

    Raises:
        UnsafeArchiveError: a member has an absolute path, a ``..`` component, resolves outside
            ``dest``, or is a symbolic/hard link or a device/FIFO (checked before writing anything).
        DownloadError: the file is neither a tar nor a zip archive.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            infos = handle.infolist()

            def zip_kind(info: zipfile.ZipInfo) -> str | None:
                mode = info.external_attr >> 16
                return "symbolic link" if stat.S_ISLNK(mode) else None

            _check_members(archive, dest, ((info.filename, zip_kind(info)) for info in infos))
            for info in tqdm(infos, desc=f"extract {archive.name}", unit="file", disable=not progress):
                handle.extract(info, dest)
            return len(infos)
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as handle:
            members = handle.getmembers()

            def tar_kind(member: tarfile.TarInfo) -> str | None:
                if member.issym() or member.islnk():
                    return "link"
                if not (member.isfile() or member.isdir()):
                    return "device, FIFO or other special file"
                return None

            _check_members(archive, dest, ((m.name, tar_kind(m)) for m in members))
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            for member in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
                handle.extract(member, dest, **extra)
            return len(members)
    raise DownloadError(f"{archive} is neither a tar nor a zip archive: delete it and download again")


def _write_done(root: Path, remote: RemoteFile, checksums: str | dict[str, Any], members: int | None) -> None:
    """The completion marker of ``remote``: the digests verified (``md5``, ``sha1``: null when
    :data:`NOT_CHECKSUMMED`) and whose they are (``checksums``); ``members`` extracted (null for
    a tree found in place)."""
    verified = checksums != NOT_CHECKSUMMED
    atomic_write_text(_marker(root, remote, "done"), json.dumps({
        "filename": remote.filename, "md5": remote.md5 if verified else None, "sha1": remote.sha1 if verified else None,
        "checksums": checksums, "dest": remote.dest, "members": members, "finished": time.time()}, indent=1))


def _marker_checksums(root: Path, remote: RemoteFile) -> str | dict[str, Any] | None:
    """The ``checksums`` of the completion marker of ``remote`` (:data:`OFFICIAL` for a marker of
    an older version, which verified the table's digests only); None without a readable marker."""
    done = _marker(root, remote, "done")
    if _marker(root, remote, "extracting").exists() or not done.is_file():
        return None
    try:
        record = json.loads(done.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("checksums", OFFICIAL) if isinstance(record, dict) else None


def _verified_enough(marked: str | dict[str, Any] | None, expected: _Expected) -> bool:
    """Whether a file in place whose marker records ``marked`` (:func:`_marker_checksums`) needs
    no new check against ``expected``: it was verified against the table's digests, or against
    some digests when the table's are asked for, or against the very digests asked for now."""
    if marked is None or marked == NOT_CHECKSUMMED:
        return False
    if marked == OFFICIAL or expected.record == OFFICIAL:
        return True
    return all(str(marked.get(key)).lower() == str(expected.record.get(key)).lower()
               for key in (*_DIGEST_LENGTHS, "size_bytes"))


def _install(name: str, root: Path, expected: _Expected, local: Path, progress: bool) -> None:
    """Extract (archives) or copy (plain files) ``local`` into ``root/remote.dest``; mark it done."""
    remote = expected.remote
    dest = root / remote.dest
    extracting = _marker(root, remote, "extracting")
    atomic_write_text(extracting, json.dumps({"archive": str(local), "started": time.time()}))
    if remote.extract:
        try:
            count = safe_extract(local, dest, progress)
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
            raise DownloadError(f"{name}: extracting {local} into {dest} failed ({type(error).__name__}: {error}); "
                                "fix it and run the command again (the extraction is redone)") from None
    else:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / remote.filename
        if local.resolve() != target.resolve():
            with atomic_path(target) as tmp:
                shutil.copyfile(local, tmp)
        count = 1
    missing = [p for p in remote.provides if not (root / p).exists()]
    if missing:
        raise DownloadError(f"{name}: {remote.filename} did not contain {missing[0]} (expected under {root}): "
                            "the archive does not have the official layout; delete it and download again")
    _write_done(root, remote, expected.record, count)
    extracting.unlink()


def _match_archives(name: str, files: Sequence[RemoteFile], archives: Sequence[Path], progress: bool) -> dict[str, Path]:
    """Map each archive given by the user to one of ``files``: by name, else by checksum."""
    matched: dict[str, Path] = {}
    for path in archives:
        if not path.is_file():
            raise DownloadError(f"{name}: --archive {path} does not exist or is not a file")
        remote = next((f for f in files if f.filename == path.name), None)
        if remote is None:
            remote = next((f for f in files if f.filename not in matched
                           and _checksum_problem(path, f, progress) is None), None)
        if remote is None:
            names = ", ".join(f.filename for f in files)
            raise DownloadError(f"{name}: --archive {path} is none of {name}'s files ({names}), by name or checksum")
        matched[remote.filename] = path
    return matched


def _is_in_place(root: Path, remote: RemoteFile) -> bool:
    if _marker(root, remote, "extracting").exists():
        return False
    if _marker(root, remote, "done").exists():
        return all((root / p).exists() for p in remote.provides)
    return bool(remote.provides) and all((root / p).exists() for p in remote.provides)


def _split_size(name: str, root: Path, split: str) -> int:
    """The number of images of ``split`` of dataset ``name`` as its loader reads it."""
    if name == "sbd":  # download-only (its lists feed voc2012's train_aug): no get_dataset loader
        from wildcat.data.sbd import read_sbd_split

        return len(read_sbd_split(root, split))
    return len(get_dataset(name, root, split))


def _check_counts(name: str, root: Path) -> None:
    """Refuse a tree of dataset ``name`` found in place (no marker, no digest) whose splits do
    not have the published image counts of ``sources.EXPECTED_COUNTS``, or cannot be read.

    Raises:
        DownloadError: one line naming the split, its count and the published one, and the fix.
    """
    fix = (f"extract the whole official archive again, or delete the tree and run `wildcat download {name} "
           f"--root {root}` (with --archive FILE --checksums FILE for a copy of your own)")
    for (dataset, split), published in sources.EXPECTED_COUNTS.items():
        if dataset != name or (dataset, split) in _SPLITS_OF_OTHER_FILES:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DatasetCountWarning)  # the error below says it
                count = _split_size(name, root, split)
        except (DatasetNotFoundError, DatasetFormatError, UnknownSplitError) as error:
            raise DownloadError(f"{name}: the tree found in place under {root} (extracted by hand, no completion "
                                f"marker) cannot be read as split {split!r} ({error}): {fix}") from None
        if count != published:
            raise DownloadError(f"{name}: the tree found in place under {root} (extracted by hand, no completion "
                                f"marker) has {count} images in split {split!r}, the published count is "
                                f"{published}: {fix}")


@contextlib.contextmanager
def _file_lock(root: Path, remote: RemoteFile) -> Iterator[None]:
    """Hold ``<root>/.wildcat/<file>.lock`` (an exclusive ``flock``) while ``remote`` is fetched and
    installed. Two datasets that share a file (voc2012 and voc2012_action share the VOC 2012
    trainval tar) downloaded at once, as the workflow's download jobs are, take turns: the second
    finds the file in place instead of writing the same ``.part``."""
    path = _marker(root, remote, "lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"wildcat download: another download is fetching {remote.filename}: waiting for it",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _make_ready(name: str, root: Path, expected: _Expected, given: dict[str, Path], progress: bool,
                keep_archives: bool) -> bool:
    """Fetch (or take from ``given`` or ``root``), verify and install one file of dataset ``name``
    unless it is in place, holding its lock (:func:`_file_lock`). Returns True when the file was
    found in place without a marker (a tree extracted by hand, checked by the caller)."""
    remote = expected.remote
    with _file_lock(root, remote):
        if _is_in_place(root, remote):
            marked = _marker_checksums(root, remote)
            if _verified_enough(marked, expected):
                return False
            if expected.record == OFFICIAL and remote.filename not in given:
                return marked is None
        if remote.filename in given or (root / remote.filename).is_file():
            local = given.get(remote.filename, root / remote.filename)
            problem = _checksum_problem(local, remote, progress)
            if problem is not None:
                placed = "" if remote.filename in given else f": delete it and run `wildcat download {name} --root {root}`"
                raise ChecksumError(f"{name}: {local} does not match {expected.origin} ({problem}); "
                                    f"the file was left in place{placed}{expected.fix}")
        else:
            local = _fetch(name, root, expected, progress)
        _install(name, root, expected, local, progress)
        downloaded_here = remote.filename not in given and local.parent.resolve() == root.resolve()
        if not keep_archives and remote.extract and downloaded_here:
            local.unlink()
        return False


# -- public API ------------------------------------------------------------------------------
def download_dataset(name: str, root: PathLike, archive: None | PathLike | Sequence[PathLike] = None,
                     *, checksums: PathLike | None = None, progress: bool = True, keep_archives: bool = True) -> Path:
    """Make dataset ``name`` ready under ``root``; do nothing if it already is.

    Args:
        name: a key of ``wildcat.data.sources.SOURCES`` (``voc2007``, ``voc2012``,
            ``voc2012_action``, ``coco2014``, ``mit67``, ``scene15``).
        root: the data folder (created if needed); archives are stored directly in it.
        archive: one or more already-downloaded files (``--archive FILE``), matched to the
            dataset's files by name, else by checksum. They are verified, used in place and never
            deleted. Files not given are looked for in ``root``, then downloaded. A file given
            here is installed even over a tree found in place, unless its marker records
            verified digests.
        checksums: a JSON file ``{"<filename>": {"md5": hex, "sha1": hex, "size_bytes": int}}``
            (``--checksums FILE``; md5 or sha1 required, size optional): the files it lists are
            verified against these digests instead of the table's, wherever they come from
            (``archive``, ``root``, a mirror or the URLs); the others keep the table's. Their
            markers record the entry, the file's path and its sha256. A file in place is
            verified again when its marker records other digests than these (not when it
            records the table's).
        progress: show tqdm bars (download, hashing, extraction) on stderr.
        keep_archives: keep the downloaded archives in ``root`` after extraction.

    Returns:
        The dataset folder (e.g. ``root/VOCdevkit/VOC2007``), ready for ``get_dataset``.

    Raises:
        ValueError: unknown dataset name (or ``synthetic``, which is generated).
        DownloadError: a file could not be downloaded from any URL (the message lists each URL's
            failure and how to place the file by hand); ``ChecksumError``: a file has the wrong
            digest (a downloaded one is deleted; a given one is left); ``UnsafeArchiveError``: an
            archive member would escape the target folder or is a link. Also (one line each): a bad
            ``checksums`` file, and a tree found in place whose splits do not have the published
            counts.
    """
    source = sources.get_source(name)
    root = Path(root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"{name}: cannot create the data folder {root}: {error.strerror}") from None
    expected_files = _expected_files(name, source, checksums)
    archives = [] if archive is None else [archive] if isinstance(archive, (str, os.PathLike)) else list(archive)
    given = _match_archives(name, [e.remote for e in expected_files], [Path(a).expanduser() for a in archives], progress)
    found_by_hand = [expected.remote for expected in expected_files
                     if _make_ready(name, root, expected, given, progress, keep_archives)]
    missing = [p for p in source.all_required if not (root / p).exists()]
    if missing:
        raise DownloadError(f"{name}: {root / missing[0]} is missing after extraction: delete {root / MARKER_DIR} "
                            f"and run `wildcat download {name} --root {root}` again")
    if found_by_hand:
        # every dataset read from these files (voc2012 and voc2012_action share one archive)
        filenames = {remote.filename for remote in found_by_hand}
        for other, other_source in sources.SOURCES.items():
            if any(f.filename in filenames for f in other_source.files) and dataset_status(other, root) == "ready":
                _check_counts(other, root)
        for remote in found_by_hand:
            _write_done(root, remote, NOT_CHECKSUMMED, None)
    return root / source.folder


def interrupted_extractions(name: str, root: PathLike) -> list[str]:
    """Files of dataset ``name`` whose extraction into ``root`` started and did not finish."""
    source = sources.SOURCES.get(name)
    if source is None:
        return []
    return [f.filename for f in source.files if _marker(Path(root), f, "extracting").exists()]


def dataset_status(name: str, root: PathLike) -> str:
    """``ready`` | ``interrupted`` (an extraction did not finish) | ``downloaded`` (archives in
    root, not extracted) | ``partial`` (some files or a ``.part``) | ``missing``."""
    source, root = sources.get_source(name), Path(root)
    if interrupted_extractions(name, root):
        return "interrupted"
    if all((root / p).exists() for p in source.all_required):
        return "ready"
    present = [_is_in_place(root, f) or (root / f.filename).is_file() for f in source.files]
    if all(present):
        return "downloaded"
    if any(present) or any((root / f"{f.filename}.part").exists() for f in source.files):
        return "partial"
    return "missing"


def checksums_summary(names: Sequence[str], root: PathLike) -> str:
    """:func:`dataset_checksums` over the files of several datasets (a split read from more than
    one download: voc2012's ``train_aug`` is VOC 2012 and SBD); ``"-"`` unless all are ready."""
    root = Path(root)
    if any(dataset_status(name, root) != "ready" for name in names):
        return "-"
    records = [_marker_checksums(root, remote) for name in names for remote in sources.get_source(name).files]
    if any(record in (None, NOT_CHECKSUMMED) for record in records):
        return NOT_CHECKSUMMED
    files = list(dict.fromkeys(record["file"] for record in records if isinstance(record, dict)))
    return f"custom: {', '.join(files)}" if files else OFFICIAL


def dataset_checksums(name: str, root: PathLike) -> str:
    """Which digests the files of dataset ``name`` under ``root`` were verified against, from
    their completion markers: ``"official"`` (all the table's), ``"custom: <FILE>[, <FILE>...]"``
    (some the digests of a ``--checksums`` file), ``"not checksummed"`` (some tree was found in
    place, or has no marker; this wins over custom), or ``"-"`` when the dataset is not ready."""
    return checksums_summary([name], root)


def list_datasets(root: PathLike) -> list[dict]:
    """One row per downloadable dataset, in table order.

    Returns:
        ``[{"name", "title", "size" (human, e.g. "2.0 GB"), "size_bytes" (int | None),
        "license" (terms URL), "license_note", "homepage", "status" (see :func:`dataset_status`),
        "checksums" (see :func:`dataset_checksums`), "path" (the dataset folder)}]``.
    """
    rows = []
    for name, source in sources.SOURCES.items():
        rows.append({
            "name": name,
            "title": source.title,
            "size": _human_size(source.size_bytes),
            "size_bytes": source.size_bytes,
            "license": source.license_url,
            "license_note": source.license,
            "homepage": source.homepage,
            "status": dataset_status(name, root),
            "checksums": dataset_checksums(name, root),
            "path": str(Path(root) / source.folder),
        })
    return rows
