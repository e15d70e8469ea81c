import pytest

from psfuture.corpus.fetch import FetchError

from conftest import load_script


def _script():
    return load_script("scripts/build_data.py")


def test_download_failure_exits_with_the_reason(tmp_path, monkeypatch):
    script = _script()

    def fail(cfg):
        raise FetchError("apt-get download trans-de-en failed; run `apt-get update`")
    monkeypatch.setattr(script, "build", fail)
    with pytest.raises(SystemExit, match="build_data: apt-get download trans-de-en failed"):
        script.main(["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])


def test_unknown_source_is_rejected_by_the_command_line(capsys):
    with pytest.raises(SystemExit):
        _script().main(["--sources", "europarl"])
    assert "invalid choice: 'europarl'" in capsys.readouterr().err
