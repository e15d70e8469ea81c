"""Download registry packages into a cache and unpack the parts the readers need."""
from __future__ import annotations

import fnmatch
import io
import logging
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Package:
    kind: str  # "deb" (Debian archive) or "pypi"
    name: str
    version: str
    members: tuple[str, ...] = ("*",)  # globs of archive paths to unpack


class FetchError(RuntimeError):
    pass


def deb_version(path: Path) -> str:
    """Version from apt's file name, name_version_arch.deb ("1%3a1.16.9-1" is "1:1.16.9-1")."""
    return unquote(path.name.split("_")[1])


def _cached(pkg: Package, dl: Path) -> Path | None:
    if pkg.kind == "deb":
        hits = [p for p in dl.glob(f"{pkg.name}_*.deb") if deb_version(p) == pkg.version]
    else:
        hits = list(dl.glob(f"{pkg.name.replace('-', '_')}-{pkg.version}-*.whl"))
    return sorted(hits)[0] if hits else None


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    log.info("running %s", " ".join(cmd))
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _apt_download(pkg: Package, dl: Path) -> Path:
    if not shutil.which("apt-get"):
        raise FetchError(f"{pkg.name}: apt-get not found; download {pkg.name}_{pkg.version} "
                         f"by hand into {dl}")
    for spec in (f"{pkg.name}={pkg.version}", pkg.name):
        r = _run(["apt-get", "download", spec], dl)
        if r.returncode and "Unable to locate" in r.stderr:  # empty package lists on a fresh machine
            _run(["apt-get", "update"], dl)
            r = _run(["apt-get", "download", spec], dl)
        if r.returncode == 0:
            got = sorted(dl.glob(f"{pkg.name}_*.deb"), key=lambda p: p.stat().st_mtime)[-1]
            if spec == pkg.name:
                log.warning("%s %s is gone from the archive; using %s", pkg.name, pkg.version, deb_version(got))
            return got
        log.warning("apt-get download %s failed: %s", spec, r.stderr.strip()[-500:])
    raise FetchError(f"apt-get download {pkg.name} failed; run `apt-get update` and check the package name")


def _pip_download(pkg: Package, dl: Path) -> Path:
    r = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "-d", str(dl), f"{pkg.name}=={pkg.version}"], dl)
    if r.returncode or not _cached(pkg, dl):
        raise FetchError(f"pip download {pkg.name}=={pkg.version} failed:\n{r.stderr.strip()[-1000:]}")
    return _cached(pkg, dl)


def fetch(pkg: Package, cache: Path) -> Path:
    """The package archive in cache/dl, downloaded unless already there."""
    dl = Path(cache) / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    hit = _cached(pkg, dl)
    if hit:
        return hit
    if pkg.kind == "deb":
        return _apt_download(pkg, dl)
    if pkg.kind == "pypi":
        return _pip_download(pkg, dl)
    raise ValueError(f"{pkg.name}: unknown package kind {pkg.kind!r} (use 'deb' or 'pypi')")


def _deb_data_tar(path: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an `ar` archive), opened for streaming."""
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise FetchError(f"{path}: not a Debian package (no ar header)")
        while header := f.read(60):
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            if name.startswith("data.tar"):
                return tarfile.open(fileobj=io.BytesIO(f.read(size)), mode="r:*")
            f.seek(size + size % 2, 1)
    raise FetchError(f"{path}: no data.tar member")


def _wanted(name: str, members: tuple[str, ...]) -> bool:
    name = name.removeprefix("./")
    return any(fnmatch.fnmatchcase(name, m) for m in members)


def extract(pkg: Package, archive: Path, cache: Path) -> Path:
    """Unpack the package's wanted members once into cache/x/<archive name>; return that root."""
    dest = Path(cache) / "x" / archive.name
    done = dest / ".complete"
    if done.is_file() and done.read_text() == repr(pkg.members):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest, [n for n in z.namelist() if _wanted(n, pkg.members)])
    else:
        with _deb_data_tar(archive) as tar:
            for m in tar:
                if (m.isfile() or m.isdir()) and _wanted(m.name, pkg.members):
                    tar.extract(m, dest, filter="data")
    done.write_text(repr(pkg.members))
    return dest
