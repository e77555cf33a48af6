"""wildcat.data.download on tiny fake archives served from 127.0.0.1 (no internet)."""

from __future__ import annotations

import dataclasses
import io
import tarfile
import zipfile

import pytest

from wildcat.data import DatasetNotFoundError, get_dataset, sources
from wildcat.data import download as dl

from helpers import fake_archives as fa

pytestmark = pytest.mark.filterwarnings("ignore::wildcat.data.DatasetCountWarning")

REAL_NAMES = ["voc2007", "voc2012", "voc2012_action", "coco2014", "mit67", "scene15"]
#: every entry of the sources table (sbd is download-only: it feeds voc2012's train_aug split)
DOWNLOADABLE = ["voc2007", "voc2012", "voc2012_action", "sbd", "coco2014", "mit67", "scene15"]
FIRST_SPLIT = {"voc2007": "test", "voc2012": "val", "voc2012_action": "train", "coco2014": "val",
               "mit67": "train", "scene15": "train"}


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    """No real waiting between retries, and no mirror from the environment."""
    monkeypatch.setattr(dl, "RETRY_DELAYS_S", (0.01, 0.01, 0.01, 0.01))
    monkeypatch.delenv(sources.MIRROR_ENV, raising=False)


def use_fake(monkeypatch, name: str, base_url: str, **kwargs) -> sources.DatasetSource:
    """Point the sources table (for this test only) at the local server."""
    fake = fa.fake_source(name, base_url, **kwargs)
    monkeypatch.setitem(sources.SOURCES, name, fake)
    return fake


# -- every dataset: progress, resume, second call, checksum, traversal ---------------------------

@pytest.mark.parametrize("name", REAL_NAMES)
def test_download_resumes_extracts_and_second_call_does_nothing(name, tmp_path, monkeypatch, capsys):
    archives = fa.ARCHIVES[name]()
    with fa.serve(archives) as server:
        fake = use_fake(monkeypatch, name, server.url)
        first = fake.files[0].filename
        server.drop_once.add(first)  # the server cuts the connection once, mid-file

        folder = dl.download_dataset(name, tmp_path)

        assert folder == tmp_path / sources.SOURCES[name].folder and folder.is_dir()
        # the cut file was asked for twice, the second time from where the first stopped
        ranges = [r for n, r in server.requests if n == first]
        assert ranges == [None, f"bytes={len(archives[first]) // 2}-"]
        for remote in fake.files:
            assert (tmp_path / remote.filename).read_bytes() == archives[remote.filename]
            assert not (tmp_path / f"{remote.filename}.part").exists()
            assert (tmp_path / dl.MARKER_DIR / f"{remote.filename}.done").is_file()
        assert dl.dataset_status(name, tmp_path) == "ready"
        stderr = capsys.readouterr().err
        assert first in stderr and "100%" in stderr  # the tqdm bar

        # the dataset loads
        assert len(get_dataset(name, tmp_path, FIRST_SPLIT[name])) > 0

        # a second call neither downloads nor extracts
        count = len(server.requests)
        monkeypatch.setattr(dl, "safe_extract", lambda *a, **k: pytest.fail("extracted again"))
        assert dl.download_dataset(name, tmp_path) == folder
        assert len(server.requests) == count


@pytest.mark.parametrize("name", REAL_NAMES)
def test_checksum_mismatch_deletes_the_download(name, tmp_path, monkeypatch):
    archives = fa.ARCHIVES[name]()
    with fa.serve(archives) as server:
        first = sources.SOURCES[name].files[0].filename
        use_fake(monkeypatch, name, server.url, wrong_md5=frozenset({first}))
        with pytest.raises(dl.ChecksumError) as error:
            dl.download_dataset(name, tmp_path, progress=False)
    message = str(error.value)
    assert "\n" not in message and first in message and "MD5" in message and "deleted" in message
    assert not (tmp_path / first).exists() and not (tmp_path / f"{first}.part").exists()
    assert not (tmp_path / dl.MARKER_DIR / f"{first}.done").exists()


@pytest.mark.parametrize("name", REAL_NAMES)
def test_path_traversal_member_is_refused(name, tmp_path, monkeypatch):
    first = sources.SOURCES[name].files[0].filename
    archives = dict(fa.ARCHIVES[name](), **{first: fa.unsafe_archive_like(first)})
    with fa.serve(archives) as server:
        use_fake(monkeypatch, name, server.url, archives=archives)
        with pytest.raises(dl.UnsafeArchiveError, match=r"'\.\./evil\.txt'.*nothing was extracted"):
            dl.download_dataset(name, tmp_path / "root", progress=False)
    assert not (tmp_path / "evil.txt").exists()
    assert not list((tmp_path / "root").rglob("ok.txt"))  # refused before writing anything


@pytest.mark.parametrize("name", REAL_NAMES)
def test_missing_dataset_error_names_the_fix(name, tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        get_dataset(name, tmp_path, FIRST_SPLIT[name])
    message = str(error.value)
    assert "\n" not in message and name in message and str(tmp_path) in message
    assert f"wildcat download {name} --root {tmp_path}" in message


# -- safe extraction -------------------------------------------------------------------------

def _tar_with(info: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as handle:
        info.size = len(data) if info.isfile() else 0
        handle.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _hardlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info


@pytest.mark.parametrize("archive, reason", [
    (fa.tar_bytes({"a/../../evil.txt": b"x"}), "'..'"),
    (fa.tar_bytes({"/tmp/wildcat-evil.txt": b"x"}), "absolute"),
    (_tar_with(_symlink("VOCdevkit/link", "/etc")), "link"),
    (_tar_with(_symlink("VOCdevkit/link", "inside.txt")), "link"),
    (_tar_with(_hardlink("VOCdevkit/hard", "../outside")), "link"),
    (fa.zip_bytes({"../evil.txt": b"x"}), "'..'"),
    (fa.zip_bytes({"/abs/evil.txt": b"x"}), "absolute"),
])
def test_safe_extract_refuses_unsafe_members(tmp_path, archive, reason):
    path = tmp_path / "bad.archive"
    path.write_bytes(archive)
    with pytest.raises(dl.UnsafeArchiveError, match=reason):
        dl.safe_extract(path, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_safe_extract_refuses_zip_symlink(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        handle.writestr(info, "/etc/passwd")
    path = tmp_path / "link.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(dl.UnsafeArchiveError, match="symbolic link"):
        dl.safe_extract(path, tmp_path / "out")


def test_safe_extract_extracts_tar_and_zip(tmp_path):
    (tmp_path / "a.tar").write_bytes(fa.tar_bytes({"top/x.txt": b"x", "top/sub/y.txt": b"yy"}))
    (tmp_path / "b.zip").write_bytes(fa.zip_bytes({"z/w.txt": b"w"}))
    assert dl.safe_extract(tmp_path / "a.tar", tmp_path / "out") == 2
    assert dl.safe_extract(tmp_path / "b.zip", tmp_path / "out") == 1
    assert (tmp_path / "out/top/sub/y.txt").read_bytes() == b"yy"
    assert (tmp_path / "out/z/w.txt").read_bytes() == b"w"
    (tmp_path / "c.bin").write_bytes(b"not an archive")
    with pytest.raises(dl.DownloadError, match="neither a tar nor a zip"):
        dl.safe_extract(tmp_path / "c.bin", tmp_path / "out")


# -- local archives: --archive FILE, archive placed in root ---------------------------------------

def test_archive_option_needs_no_network(tmp_path, monkeypatch):
    archives = fa.voc2007_archives()
    use_fake(monkeypatch, "voc2007", fa.closed_port_url())  # any request would fail
    given = []
    for k, (filename, data) in enumerate(archives.items()):
        # the second file is renamed: it is matched by its checksum
        path = tmp_path / "downloads" / (filename if k == 0 else "renamed.tar")
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        given.append(path)
    folder = dl.download_dataset("voc2007", tmp_path / "data", archive=given, progress=False)
    assert (folder / "ImageSets/Main/test.txt").is_file()
    assert all(p.exists() for p in given)  # the user's files are left alone
    assert not (tmp_path / "data" / "VOCtrainval_06-Nov-2007.tar").exists()


def test_archive_placed_in_root_is_used(tmp_path, monkeypatch):
    archives = fa.mit67_archives()
    use_fake(monkeypatch, "mit67", fa.closed_port_url())
    for filename, data in archives.items():
        (tmp_path / filename).write_bytes(data)
    folder = dl.download_dataset("mit67", tmp_path, progress=False)
    assert (folder / "TrainImages.txt").read_bytes() == archives["TrainImages.txt"]
    assert len(get_dataset("mit67", tmp_path, "test")) == len(fa.MIT67_TEST)


def test_wrong_archive_option_is_reported_and_kept(tmp_path, monkeypatch):
    use_fake(monkeypatch, "scene15", fa.closed_port_url())
    wrong = tmp_path / "scene_categories.zip"
    wrong.write_bytes(fa.zip_bytes({"bedroom/x.jpg": b"not the dataset"}))
    with pytest.raises(dl.ChecksumError, match="left in place"):
        dl.download_dataset("scene15", tmp_path / "data", archive=wrong, progress=False)
    assert wrong.exists()
    other = tmp_path / "something_else.zip"
    other.write_bytes(b"zz")
    with pytest.raises(dl.DownloadError, match="none of scene15's files"):
        dl.download_dataset("scene15", tmp_path / "data", archive=other, progress=False)
    with pytest.raises(dl.DownloadError, match="does not exist"):
        dl.download_dataset("scene15", tmp_path / "data", archive=tmp_path / "nope.zip", progress=False)


# -- network failures ------------------------------------------------------------------------

def test_unreachable_host_says_which_url_and_how_to_fix(tmp_path, monkeypatch):
    url = fa.closed_port_url()
    use_fake(monkeypatch, "scene15", url)
    with pytest.raises(dl.DownloadError) as error:
        dl.download_dataset("scene15", tmp_path, progress=False)
    message = str(error.value)
    assert "\n" not in message
    assert f"{url}/scene_categories.zip" in message and "5 attempts" in message
    assert "--archive FILE" in message and str(tmp_path / "scene_categories.zip") in message


def test_404_is_not_retried_and_next_mirror_is_tried(tmp_path, monkeypatch):
    archives = fa.scene15_archives()
    with fa.serve({}) as empty, fa.serve(archives) as good:
        fake = use_fake(monkeypatch, "scene15", good.url)
        remote = dataclasses.replace(fake.files[0], urls=(f"{empty.url}/scene_categories.zip",) + fake.files[0].urls)
        monkeypatch.setitem(sources.SOURCES, "scene15", dataclasses.replace(fake, files=(remote,)))
        dl.download_dataset("scene15", tmp_path, progress=False)
        assert empty.names_requested() == ["scene_categories.zip"]  # one try, no retries on 404
        assert good.names_requested() == ["scene_categories.zip"]


def test_mirror_environment_variable_is_tried_first(tmp_path, monkeypatch):
    archives = fa.scene15_archives()
    with fa.serve(archives) as mirror:
        use_fake(monkeypatch, "scene15", fa.closed_port_url())
        monkeypatch.setenv(sources.MIRROR_ENV, mirror.url + "/")
        dl.download_dataset("scene15", tmp_path, progress=False)
        assert mirror.names_requested() == ["scene_categories.zip"]


def test_server_ignoring_range_restarts_the_file(tmp_path, monkeypatch):
    archives = fa.mit67_archives()
    with fa.serve(archives) as server:
        use_fake(monkeypatch, "mit67", server.url)
        server.ignore_range = True
        server.drop_once.add("indoorCVPR_09.tar")
        dl.download_dataset("mit67", tmp_path, progress=False)
        assert (tmp_path / "indoorCVPR_09.tar").read_bytes() == archives["indoorCVPR_09.tar"]
        assert [r for n, r in server.requests if n == "indoorCVPR_09.tar"][1] is not None


def test_part_file_from_an_earlier_run_is_resumed(tmp_path, monkeypatch):
    archives = fa.scene15_archives()
    data = archives["scene_categories.zip"]
    (tmp_path / "scene_categories.zip.part").write_bytes(data[:1000])
    with fa.serve(archives) as server:
        use_fake(monkeypatch, "scene15", server.url)
        assert dl.dataset_status("scene15", tmp_path) == "partial"
        dl.download_dataset("scene15", tmp_path, progress=False)
        assert server.requests == [("scene_categories.zip", "bytes=1000-")]


def test_interrupted_extraction_is_detected_and_redone(tmp_path, monkeypatch):
    archives = fa.voc2007_archives()
    with fa.serve(archives) as server:
        use_fake(monkeypatch, "voc2007", server.url)
        dl.download_dataset("voc2007", tmp_path, progress=False)
        done = tmp_path / dl.MARKER_DIR / "VOCtest_06-Nov-2007.tar.done"
        done.rename(done.with_suffix(".extracting"))  # as if the process died while extracting
        assert dl.dataset_status("voc2007", tmp_path) == "interrupted"
        with pytest.raises(DatasetNotFoundError, match="interrupted"):
            get_dataset("voc2007", tmp_path, "test")
        dl.download_dataset("voc2007", tmp_path, progress=False)
        assert len(get_dataset("voc2007", tmp_path, "test")) == 2
        assert server.names_requested().count("VOCtest_06-Nov-2007.tar") == 1  # re-extracted, not re-downloaded


def test_archive_without_the_official_layout_is_reported(tmp_path, monkeypatch):
    archives = dict(fa.scene15_archives(), **{"scene_categories.zip": fa.zip_bytes({"other/x.jpg": b"x"})})
    with fa.serve(archives) as server:
        use_fake(monkeypatch, "scene15", server.url, archives=archives)
        with pytest.raises(dl.DownloadError, match="official layout"):
            dl.download_dataset("scene15", tmp_path, progress=False)


# -- list, names, table ----------------------------------------------------------------------

def test_list_datasets_reports_status_size_and_terms(tmp_path, monkeypatch):
    rows = dl.list_datasets(tmp_path)
    assert [r["name"] for r in rows] == DOWNLOADABLE
    assert all(r["status"] == "missing" for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert by_name["voc2012"]["size"] == "2.0 GB" and by_name["voc2012"]["size_bytes"] == 1_999_639_040
    assert by_name["coco2014"]["license"] == "https://cocodataset.org/#termsofuse"
    assert by_name["mit67"]["size"] == "?"
    with fa.serve(fa.voc2007_archives()) as server:
        use_fake(monkeypatch, "voc2007", server.url)
        dl.download_dataset("voc2007", tmp_path, progress=False)
    assert {r["name"]: r["status"] for r in dl.list_datasets(tmp_path)}["voc2007"] == "ready"


def test_unknown_and_synthetic_names(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        dl.download_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError, match="make-synthetic"):
        dl.download_dataset("synthetic", tmp_path)


def test_sources_table_is_complete_and_real():
    """The real table (not monkeypatched here) has a digest, URLs and a layout for every file."""
    assert list(sources.SOURCES) == DOWNLOADABLE
    for source in sources.SOURCES.values():
        assert source.license_url.startswith("http") and source.homepage.startswith("http")
        for remote in source.files:
            assert remote.md5 or remote.sha1
            assert all(u.startswith(("http://", "https://")) and "127.0.0.1" not in u for u in remote.urls)
            assert all(u.endswith("/" + remote.filename) for u in remote.urls)
            assert remote.provides
    assert sources.SOURCES["voc2007"].files[0].md5 == "c52e279531787c972589f7e41ab4ae64"
    assert sources.SOURCES["coco2014"].files[2].md5 == "0a379cfc70b0e71301e0f377548639bd"


def test_file_digest_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "x.bin"
    path.write_bytes(b"wildcat" * 1000)
    assert dl.file_digest(path, "md5") == hashlib.md5(b"wildcat" * 1000).hexdigest()
    assert dl.file_digest(path, "sha1") == hashlib.sha1(b"wildcat" * 1000).hexdigest()


def test_keep_archives_false_deletes_only_downloaded_archives(tmp_path, monkeypatch):
    archives = fa.mit67_archives()
    with fa.serve(archives) as server:
        use_fake(monkeypatch, "mit67", server.url)
        dl.download_dataset("mit67", tmp_path, progress=False, keep_archives=False)
    assert not (tmp_path / "indoorCVPR_09.tar").exists()
    assert (tmp_path / "TrainImages.txt").exists()  # plain files are not archives: kept
    assert dl.dataset_status("mit67", tmp_path) == "ready"
    assert len(get_dataset("mit67", tmp_path, "train")) == len(fa.MIT67_TRAIN)
