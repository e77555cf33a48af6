"""Fetch, verify and extract the real datasets: one implementation shared by all of them.

``download_dataset(name, root)`` does, for each file of ``SOURCES[name]`` (wildcat/data/sources.py):

1. skip it when it is already in place (a completion marker ``<root>/.wildcat/<file>.done``, or
   every path it ``provides`` exists, e.g. a tree extracted by hand);
2. find it: the ``archive=`` argument (``--archive FILE``), else ``<root>/<filename>`` (an archive
   placed there by hand), else download it:
   stream to ``<root>/<filename>.part`` with a tqdm bar, resume an interrupted transfer with an HTTP
   ``Range`` request, retry transient errors with exponential backoff, then try the next mirror;
3. verify every digest of the table (MD5 / SHA1; a downloaded file that fails is deleted and the
   error says so; a file the user placed is never deleted) and rename ``.part`` atomically;
4. extract (tar / zip) after checking every member: absolute paths, ``..`` components, links and
   device files are refused before anything is written; plain files are copied atomically;
   ``<root>/.wildcat/<file>.extracting`` marks an extraction in progress and becomes ``.done``.

Standard library only for the transfer (``urllib``), hashing (``hashlib``) and extraction
(``tarfile`` with the ``"data"`` filter where available, ``zipfile``). torchvision's helpers are
not used here: ``download_url`` cannot resume, and ``extract_archive`` calls ``extractall``
without a filter (no protection against ``..`` members or links).

Errors a user can fix are :class:`DownloadError` subclasses of ``wildcat.errors.WildcatError``
with a one-line message.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import shutil
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from wildcat.data import sources
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
    """Hex digest (``"md5"`` or ``"sha1"``) of a file, read in 1 MiB chunks."""
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


def _fetch(name: str, root: Path, remote: RemoteFile, progress: bool) -> Path:
    """Download ``remote`` to ``<root>/<filename>`` (verified), trying every URL in turn."""
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
        raise ChecksumError(f"{name}: {remote.filename} failed its checksum ({'; '.join(failures)}); the bad download "
                            f"was deleted: run the command again, or {_fix_hint(name, root, remote)}")
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


def _install(name: str, root: Path, remote: RemoteFile, local: Path, progress: bool) -> None:
    """Extract (archives) or copy (plain files) ``local`` into ``root/remote.dest``; mark it done."""
    dest = root / remote.dest
    extracting, done = _marker(root, remote, "extracting"), _marker(root, remote, "done")
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
    atomic_write_text(done, json.dumps({"filename": remote.filename, "md5": remote.md5, "sha1": remote.sha1,
                                    "dest": remote.dest, "members": count, "finished": time.time()}, indent=1))
    extracting.unlink()


def _match_archives(name: str, source: DatasetSource, archives: Sequence[Path], progress: bool) -> dict[str, Path]:
    """Map each archive given by the user to a file of the table: by name, else by checksum."""
    matched: dict[str, Path] = {}
    for path in archives:
        if not path.is_file():
            raise DownloadError(f"{name}: --archive {path} does not exist or is not a file")
        remote = next((f for f in source.files if f.filename == path.name), None)
        if remote is None:
            remote = next((f for f in source.files if f.filename not in matched
                           and _checksum_problem(path, f, progress) is None), None)
        if remote is None:
            names = ", ".join(f.filename for f in source.files)
            raise DownloadError(f"{name}: --archive {path} is none of {name}'s files ({names}), by name or checksum")
        matched[remote.filename] = path
    return matched


def _is_in_place(root: Path, remote: RemoteFile) -> bool:
    if _marker(root, remote, "extracting").exists():
        return False
    if _marker(root, remote, "done").exists():
        return all((root / p).exists() for p in remote.provides)
    return bool(remote.provides) and all((root / p).exists() for p in remote.provides)


# -- public API ------------------------------------------------------------------------------
def download_dataset(name: str, root: PathLike, archive: None | PathLike | Sequence[PathLike] = None,
                     *, progress: bool = True, keep_archives: bool = True) -> Path:
    """Make dataset ``name`` ready under ``root``; do nothing if it already is.

    Args:
        name: a key of ``wildcat.data.sources.SOURCES`` (``voc2007``, ``voc2012``,
            ``voc2012_action``, ``coco2014``, ``mit67``, ``scene15``).
        root: the data folder (created if needed); archives are stored directly in it.
        archive: one or more already-downloaded files (``--archive FILE``), matched to the
            dataset's files by name, else by checksum. They are verified, used in place and never
            deleted. Files not given are looked for in ``root``, then downloaded.
        progress: show tqdm bars (download, hashing, extraction) on stderr.
        keep_archives: keep the downloaded archives in ``root`` after extraction.

    Returns:
        The dataset folder (e.g. ``root/VOCdevkit/VOC2007``), ready for ``get_dataset``.

    Raises:
        ValueError: unknown dataset name (or ``synthetic``, which is generated).
        DownloadError: a file could not be downloaded from any URL (the message lists each URL's
            failure and how to place the file by hand); ``ChecksumError``: a file has the wrong
            digest (a downloaded one is deleted; a given one is left); ``UnsafeArchiveError``: an
            archive member would escape the target folder or is a link.
    """
    source = sources.get_source(name)
    root = Path(root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"{name}: cannot create the data folder {root}: {error.strerror}") from None
    archives = [] if archive is None else [archive] if isinstance(archive, (str, os.PathLike)) else list(archive)
    given = _match_archives(name, source, [Path(a).expanduser() for a in archives], progress)
    for remote in source.files:
        if _is_in_place(root, remote):
            continue
        if remote.filename in given:
            local = given[remote.filename]
            problem = _checksum_problem(local, remote, progress)
            if problem is not None:
                raise ChecksumError(f"{name}: {local} is not the official {remote.filename} ({problem}); "
                                    "the file was left in place")
        elif (root / remote.filename).is_file():
            local = root / remote.filename
            problem = _checksum_problem(local, remote, progress)
            if problem is not None:
                raise ChecksumError(f"{name}: {local} is not the official {remote.filename} ({problem}); "
                                    f"the file was left in place: delete it and run `wildcat download {name} --root {root}`")
        else:
            local = _fetch(name, root, remote, progress)
        _install(name, root, remote, local, progress)
        downloaded_here = remote.filename not in given and local.parent.resolve() == root.resolve()
        if not keep_archives and remote.extract and downloaded_here:
            local.unlink()
    missing = [p for p in source.all_required if not (root / p).exists()]
    if missing:
        raise DownloadError(f"{name}: {root / missing[0]} is missing after extraction: delete {root / MARKER_DIR} "
                            f"and run `wildcat download {name} --root {root}` again")
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


def list_datasets(root: PathLike) -> list[dict]:
    """One row per downloadable dataset, in table order.

    Returns:
        ``[{"name", "title", "size" (human, e.g. "2.0 GB"), "size_bytes" (int | None),
        "license" (terms URL), "license_note", "homepage", "status" (see :func:`dataset_status`),
        "path" (the dataset folder)}]``.
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
            "path": str(Path(root) / source.folder),
        })
    return rows
