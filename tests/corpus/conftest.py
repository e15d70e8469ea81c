"""Tiny stand-ins for the packages the corpus is built from, written by the tests themselves."""
import io
import struct
import tarfile

import pytest


def make_mo(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A little-endian GNU .mo catalog holding (msgid, msgstr) entries as given."""
    n = len(entries)
    ids_at, strs_at = 28, 28 + 8 * n
    data_at = strs_at + 8 * n
    blob, ids, strs = b"", [], []
    for table, index in ((ids, 0), (strs, 1)):
        for entry in entries:
            table.append((len(entry[index]), data_at + len(blob)))
            blob += entry[index] + b"\0"
    head = struct.pack("<7I", 0x950412DE, 0, n, ids_at, strs_at, 0, 0)
    return head + b"".join(struct.pack("<2I", *t) for t in ids + strs) + blob


def make_deb(files: dict[str, bytes]) -> bytes:
    """A Debian package (an `ar` archive with a data.tar.xz) holding `files` under ./"""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:xz") as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo("./" + name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    members = [(b"debian-binary", b"2.0\n"), (b"control.tar.xz", b""), (b"data.tar.xz", tar_bytes.getvalue())]
    out = b"!<arch>\n"
    for name, content in members:
        out += name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"100644".ljust(8)
        out += str(len(content)).encode().ljust(10) + b"`\n" + content + (b"\n" if len(content) % 2 else b"")
    return out


@pytest.fixture
def mo_bytes():
    return make_mo


@pytest.fixture
def deb_bytes():
    return make_deb
