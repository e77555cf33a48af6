"""wildcat.data.download on tiny fake archives served from 127.0.0.1 (no internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
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


def recorded(root) -> list[str]:
    """The completion and extraction markers under ``root`` (the per-file locks record nothing)."""
    folder = root / dl.MARKER_DIR
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock") if folder.exists() else []


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
    path = tmp_path / "x.bin"
    path.write_bytes(b"wildcat" * 1000)
    assert dl.file_digest(path, "md5") == hashlib.md5(b"wildcat" * 1000).hexdigest()
    assert dl.file_digest(path, "sha1") == hashlib.sha1(b"wildcat" * 1000).hexdigest()
    assert dl.file_digest(path, "sha256") == hashlib.sha256(b"wildcat" * 1000).hexdigest()


def test_keep_archives_false_deletes_only_downloaded_archives(tmp_path, monkeypatch):
    archives = fa.mit67_archives()
    with fa.serve(archives) as server:
        use_fake(monkeypatch, "mit67", server.url)
        dl.download_dataset("mit67", tmp_path, progress=False, keep_archives=False)
    assert not (tmp_path / "indoorCVPR_09.tar").exists()
    assert (tmp_path / "TrainImages.txt").exists()  # plain files are not archives: kept
    assert dl.dataset_status("mit67", tmp_path) == "ready"
    assert len(get_dataset("mit67", tmp_path, "train")) == len(fa.MIT67_TRAIN)


# -- your own copy of an archive: --checksums FILE --------------------------------------------------

def digests_of(data: bytes, *keys: str) -> dict:
    """A --checksums entry of ``data`` with the given keys (md5, sha1, size_bytes)."""
    entry = {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(), "size_bytes": len(data)}
    return {key: entry[key] for key in keys}


def write_checksums(path, table: dict):
    path.write_text(json.dumps(table))
    return path


def marker(root, filename: str) -> dict:
    return json.loads((root / dl.MARKER_DIR / f"{filename}.done").read_text())


def test_cli_accepts_a_stand_in_archive_with_its_checksums_and_refuses_it_without(tmp_path, capsys):
    """The done-when check, with the real sources table: stand-in tars under the official names."""
    from wildcat.cli import main

    archives = fa.voc2007_archives()
    given = []
    for filename, data in archives.items():
        (tmp_path / "copy").mkdir(exist_ok=True)
        given.append(tmp_path / "copy" / filename)
        given[-1].write_bytes(data)
    root = tmp_path / "data"
    command = ["download", "voc2007", "--root", str(root), "--quiet", "--archive", *map(str, given)]

    # without --checksums: the official digests (the real table's size and MD5) refuse the copy
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not match the official VOCtrainval_06-Nov-2007.tar" in err
    assert f"size {len(archives['VOCtrainval_06-Nov-2007.tar'])} bytes, expected 460032000" in err
    assert "--checksums FILE" in err and not recorded(root)

    # a file listing only the test tar: the trainval tar keeps the official digests (refused)
    only_test = write_checksums(tmp_path / "only_test.json",
                                {"VOCtest_06-Nov-2007.tar": digests_of(archives["VOCtest_06-Nov-2007.tar"], "md5")})
    assert main([*command, "--checksums", str(only_test)]) == 2
    assert "does not match the official VOCtrainval_06-Nov-2007.tar" in capsys.readouterr().err

    # with both files' digests: accepted, extracted, loadable, recorded; the user's files are kept
    table = {filename: digests_of(data, "md5", "sha1", "size_bytes") for filename, data in archives.items()}
    checksums = write_checksums(tmp_path / "sums.json", table)
    assert main([*command, "--checksums", str(checksums)]) == 0
    assert capsys.readouterr().out.strip() == str(root / "VOCdevkit/VOC2007")
    assert len(get_dataset("voc2007", root, "test")) == 2 and len(get_dataset("voc2007", root, "trainval")) == 3
    assert all(path.read_bytes() == archives[path.name] for path in given)
    sha256 = hashlib.sha256(checksums.read_bytes()).hexdigest()
    for filename in archives:
        assert marker(root, filename)["checksums"] == {"file": str(checksums.resolve()), "sha256": sha256,
                                                       **table[filename]}
    assert dl.dataset_checksums("voc2007", root) == f"custom: {checksums.resolve()}"


def test_a_mirror_download_is_verified_against_the_checksums_file(tmp_path, monkeypatch):
    archives = fa.scene15_archives()
    data = archives["scene_categories.zip"]
    with fa.serve(archives) as mirror:
        # the table's MD5 is not the mirror's copy: refused without the user's digests
        use_fake(monkeypatch, "scene15", fa.closed_port_url(), wrong_md5=frozenset({"scene_categories.zip"}))
        monkeypatch.setenv(sources.MIRROR_ENV, mirror.url)
        with pytest.raises(dl.ChecksumError, match="does not match the official scene_categories.zip"):
            dl.download_dataset("scene15", tmp_path / "a", progress=False)
        checksums = write_checksums(tmp_path / "sums.json", {"scene_categories.zip": digests_of(data, "sha1")})
        dl.download_dataset("scene15", tmp_path / "b", checksums=checksums, progress=False)
        assert mirror.names_requested() == ["scene_categories.zip"] * 2
    assert (tmp_path / "b/scene_categories.zip").read_bytes() == data
    record = marker(tmp_path / "b", "scene_categories.zip")
    assert record["sha1"] == digests_of(data, "sha1")["sha1"] and record["md5"] is None
    assert record["checksums"]["file"] == str(checksums.resolve()) and record["checksums"]["sha1"] == record["sha1"]
    assert "md5" not in record["checksums"]  # the user's entry, as given


def test_a_wrong_digest_in_the_checksums_file_is_refused(tmp_path, monkeypatch):
    archives = fa.scene15_archives()
    data = archives["scene_categories.zip"]
    wrong = write_checksums(tmp_path / "wrong.json", {"scene_categories.zip": {"md5": "0" * 32}})
    with fa.serve(archives) as server:
        use_fake(monkeypatch, "scene15", server.url)  # the table's digests are right: the user's win
        with pytest.raises(dl.ChecksumError) as error:
            dl.download_dataset("scene15", tmp_path / "data", checksums=wrong, progress=False)
    message = str(error.value)
    assert "\n" not in message and f"the digests of scene_categories.zip in {wrong.resolve()}" in message
    assert f"expected {'0' * 32}" in message and "deleted" in message
    assert not (tmp_path / "data/scene_categories.zip").exists() and not (tmp_path / "data/scene_categories.zip.part").exists()
    assert not (tmp_path / "data" / dl.MARKER_DIR / "scene_categories.zip.done").exists()

    given = tmp_path / "scene_categories.zip"
    given.write_bytes(data)
    too_long = write_checksums(tmp_path / "size.json", {"scene_categories.zip": {**digests_of(data, "md5"),
                                                                                  "size_bytes": len(data) + 1}})
    for checksums, problem in ((wrong, "MD5"), (too_long, f"size {len(data)} bytes, expected {len(data) + 1}")):
        with pytest.raises(dl.ChecksumError, match=f"left in place.*{problem}|{problem}.*left in place"):
            dl.download_dataset("scene15", tmp_path / "data", archive=given, checksums=checksums, progress=False)
        assert given.read_bytes() == data  # the user's file is kept


@pytest.mark.parametrize("content, problem", [
    ('{"scene_categories.tar": {"md5": "%s"}}' % ("0" * 32), "'scene_categories.tar' is not a file of scene15"),
    ('{"scene_categories.zip": {"md5": "0"', "is not JSON"),
    ('["scene_categories.zip"]', "not a JSON object with one entry per file"),
    ('{"scene_categories.zip": {"size_bytes": 10}}', "the entry of scene_categories.zip has neither md5 nor sha1"),
    ('{"scene_categories.zip": {"sha256": "%s"}}' % ("0" * 64), "has neither md5 nor sha1"),
    ('{"scene_categories.zip": {"md5": "%s", "sha256": "0"}}' % ("0" * 32), "the unknown key 'sha256'"),
    ('{"scene_categories.zip": {"md5": "xyz"}}', "the md5 of scene_categories.zip is not 32 hex digits: 'xyz'"),
    ('{"scene_categories.zip": {"sha1": "%s", "size_bytes": "12"}}' % ("0" * 40), "size_bytes of scene_categories.zip"),
])
def test_a_bad_checksums_file_is_one_line_naming_the_files(tmp_path, monkeypatch, content, problem):
    use_fake(monkeypatch, "scene15", fa.closed_port_url())  # nothing may be fetched
    checksums = tmp_path / "sums.json"
    checksums.write_text(content)
    with pytest.raises(dl.DownloadError) as error:
        dl.download_dataset("scene15", tmp_path / "data", checksums=checksums, progress=False)
    message = str(error.value)
    assert "\n" not in message and problem in message and str(checksums) in message
    assert message.endswith("for scene15's files: scene_categories.zip")
    with pytest.raises(dl.DownloadError, match="cannot read --checksums"):
        dl.download_dataset("scene15", tmp_path / "data", checksums=tmp_path / "absent.json", progress=False)


def test_an_official_install_records_the_official_digests(tmp_path, monkeypatch):
    with fa.serve(fa.mit67_archives()) as server:
        fake = use_fake(monkeypatch, "mit67", server.url)
        dl.download_dataset("mit67", tmp_path, progress=False)
    for remote in fake.files:
        record = marker(tmp_path, remote.filename)
        assert record["checksums"] == "official"
        assert (record["md5"], record["sha1"]) == (remote.md5, remote.sha1)
    assert dl.dataset_checksums("mit67", tmp_path) == "official"
    # a marker of an older version (no "checksums") verified the table's digests
    done = tmp_path / dl.MARKER_DIR / "TestImages.txt.done"
    done.write_text(json.dumps({"filename": "TestImages.txt", "md5": fake.files[2].md5, "sha1": None}))
    assert dl.dataset_checksums("mit67", tmp_path) == "official"


def test_checksums_summary_custom_files_and_not_checksummed(tmp_path, monkeypatch):
    archives = fa.mit67_archives()
    # the table's digests fit none of the tar and TrainImages.txt: each needs the user's
    use_fake(monkeypatch, "mit67", fa.closed_port_url(), wrong_md5=frozenset({"indoorCVPR_09.tar", "TrainImages.txt"}))
    for filename, data in archives.items():
        (tmp_path / filename).write_bytes(data)
    first = write_checksums(tmp_path / "a.json", {"indoorCVPR_09.tar": digests_of(archives["indoorCVPR_09.tar"], "sha1")})
    second = write_checksums(tmp_path / "b.json", {"TrainImages.txt": digests_of(archives["TrainImages.txt"], "md5")})
    with pytest.raises(dl.ChecksumError, match="official TrainImages.txt"):
        dl.download_dataset("mit67", tmp_path, checksums=first, progress=False)
    assert dl.dataset_checksums("mit67", tmp_path) == "-"  # not ready
    dl.download_dataset("mit67", tmp_path, checksums=second, progress=False)  # the tar stays as verified
    assert dl.dataset_checksums("mit67", tmp_path) == f"custom: {first.resolve()}, {second.resolve()}"
    assert {r["name"]: r["checksums"] for r in dl.list_datasets(tmp_path)}["mit67"].startswith("custom: ")
    (tmp_path / dl.MARKER_DIR / "TestImages.txt.done").unlink()  # a file in place without a marker
    assert dl.dataset_checksums("mit67", tmp_path) == "not checksummed"


def test_changed_digests_verify_a_file_again(tmp_path, monkeypatch):
    archives = fa.scene15_archives()
    data = archives["scene_categories.zip"]
    use_fake(monkeypatch, "scene15", fa.closed_port_url())
    (tmp_path / "scene_categories.zip").write_bytes(data)
    dl.download_dataset("scene15", tmp_path, progress=False)
    same = write_checksums(tmp_path / "same.json", {"scene_categories.zip": digests_of(data, "md5")})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dl, "safe_extract", lambda *a, **k: pytest.fail("extracted again"))
        # the official digests were verified: a --checksums file asks for nothing more
        dl.download_dataset("scene15", tmp_path, checksums=same, progress=False)
    assert marker(tmp_path, "scene_categories.zip")["checksums"] == "official"

    other = tmp_path / "other"
    use_fake(monkeypatch, "scene15", fa.closed_port_url(), wrong_md5=frozenset({"scene_categories.zip"}))
    (other / "scene_categories.zip").parent.mkdir()
    (other / "scene_categories.zip").write_bytes(data)
    dl.download_dataset("scene15", other, checksums=same, progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dl, "safe_extract", lambda *a, **k: pytest.fail("extracted again"))
        dl.download_dataset("scene15", other, checksums=same, progress=False)  # the same digests: nothing to do
    # other digests for the same file: it is verified again (and fails here)
    wrong = write_checksums(tmp_path / "wrong.json", {"scene_categories.zip": {"md5": "1" * 32}})
    with pytest.raises(dl.ChecksumError, match="wrong.json"):
        dl.download_dataset("scene15", other, checksums=wrong, progress=False)


# -- a tree extracted by hand (no marker): counted, then "not checksummed" ---------------------------

def extract_by_hand(name: str, root) -> None:
    """The fake archives of ``name`` extracted into ``root`` without wildcat download (no marker, no archive)."""
    for filename, data in fa.ARCHIVES[name]().items():
        remote = next(f for f in sources.SOURCES[name].files if f.filename == filename)
        path = root / "archives" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if remote.extract:
            dl.safe_extract(path, root / remote.dest)
        else:
            (root / remote.dest).mkdir(parents=True, exist_ok=True)
            (root / remote.dest / filename).write_bytes(data)


def test_a_tree_extracted_by_hand_with_other_counts_is_refused(tmp_path):
    extract_by_hand("voc2007", tmp_path)  # the real table: 5,011 trainval images are published
    with pytest.raises(dl.DownloadError) as error:
        dl.download_dataset("voc2007", tmp_path, progress=False)
    message = str(error.value)
    assert "\n" not in message and "extracted by hand" in message
    assert "has 3 images in split 'trainval', the published count is 5011" in message
    assert f"wildcat download voc2007 --root {tmp_path}" in message
    assert not recorded(tmp_path)
    assert dl.dataset_checksums("voc2007", tmp_path) == "not checksummed"  # ready on disk, never verified


def test_a_tree_extracted_by_hand_with_the_published_counts_is_marked_not_checksummed(tmp_path, monkeypatch):
    extract_by_hand("voc2007", tmp_path)
    monkeypatch.setitem(sources.EXPECTED_COUNTS, ("voc2007", "trainval"), 3)  # the fake tree's counts
    monkeypatch.setitem(sources.EXPECTED_COUNTS, ("voc2007", "test"), 2)
    assert dl.download_dataset("voc2007", tmp_path, progress=False) == tmp_path / "VOCdevkit/VOC2007"
    for remote in sources.SOURCES["voc2007"].files:
        record = marker(tmp_path, remote.filename)
        assert record["checksums"] == "not checksummed" and record["md5"] is None and record["members"] is None
    assert dl.dataset_checksums("voc2007", tmp_path) == "not checksummed"
    monkeypatch.setitem(sources.EXPECTED_COUNTS, ("voc2007", "test"), 4952)
    dl.download_dataset("voc2007", tmp_path, progress=False)  # marked: not counted again

    # the archive given with its digests replaces "not checksummed" by a verified install
    test_tar = tmp_path / "archives/VOCtest_06-Nov-2007.tar"
    checksums = write_checksums(tmp_path / "sums.json", {test_tar.name: digests_of(test_tar.read_bytes(), "md5")})
    dl.download_dataset("voc2007", tmp_path, archive=test_tar, checksums=checksums, progress=False)
    assert marker(tmp_path, test_tar.name)["checksums"]["file"] == str(checksums.resolve())
    assert dl.dataset_checksums("voc2007", tmp_path) == "not checksummed"  # the trainval tar still is not


def test_a_tree_extracted_by_hand_that_cannot_be_read_is_refused(tmp_path, monkeypatch):
    extract_by_hand("voc2007", tmp_path)
    monkeypatch.setitem(sources.EXPECTED_COUNTS, ("voc2007", "trainval"), 3)
    (tmp_path / "VOCdevkit/VOC2007/JPEGImages/000002.jpg").unlink()  # a test image
    with pytest.raises(dl.DownloadError, match=r"cannot be read as split 'test' \(.*000002\.jpg"):
        dl.download_dataset("voc2007", tmp_path, progress=False)


def test_a_shared_archive_extracted_by_hand_is_counted_for_both_datasets(tmp_path, monkeypatch):
    extract_by_hand("voc2012", tmp_path)
    for split, count in (("train", 2), ("val", 3), ("trainval", 5), ("seg_train", 1), ("seg_val", 2)):
        monkeypatch.setitem(sources.EXPECTED_COUNTS, ("voc2012", split), count)
    with pytest.raises(dl.DownloadError, match="voc2012_action: .* 2 images in split 'train', the published count is 2296"):
        dl.download_dataset("voc2012", tmp_path, progress=False)
    for split in ("train", "val"):
        monkeypatch.setitem(sources.EXPECTED_COUNTS, ("voc2012_action", split), 2)
    dl.download_dataset("voc2012", tmp_path, progress=False)
    assert dl.dataset_checksums("voc2012", tmp_path) == dl.dataset_checksums("voc2012_action", tmp_path) == "not checksummed"


def test_list_shows_the_checksums_column(tmp_path, monkeypatch, capsys):
    from wildcat.cli import main

    fa.install("mit67", tmp_path)  # official (the fakes' digests stand in for the table's)
    extract_by_hand("scene15", tmp_path)  # in place, never verified
    archives = fa.voc2007_archives()
    checksums = write_checksums(tmp_path / "sums.json", {f: digests_of(d, "md5") for f, d in archives.items()})
    for filename, data in archives.items():
        (tmp_path / filename).write_bytes(data)
    dl.download_dataset("voc2007", tmp_path, checksums=checksums, progress=False)  # the real table
    assert main(["download", "--list", "--root", str(tmp_path)]) == 0
    rows = {line.split()[0]: line.split("  ") for line in capsys.readouterr().out.splitlines()}
    columns = {name: [c.strip() for c in cells if c.strip()] for name, cells in rows.items()}
    assert columns["voc2007"][2:4] == ["ready", f"custom: {checksums.resolve()}"]
    assert columns["mit67"][2:4] == ["ready", "official"]
    assert columns["scene15"][2:4] == ["ready", "not checksummed"]
    assert columns["coco2014"][2:4] == ["missing", "-"]


def test_cli_refuses_checksums_with_all(tmp_path, capsys):
    from wildcat.cli import main

    assert main(["download", "all", "--root", str(tmp_path), "--checksums", str(tmp_path / "x.json")]) == 2
    assert "name that dataset instead of 'all'" in capsys.readouterr().err
