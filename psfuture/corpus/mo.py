"""Read GNU gettext .mo catalogs into (English msgid, German msgstr) pairs."""
from __future__ import annotations

import re
import struct

_MAGIC = {0x950412DE: "<", 0xDE120495: ">"}
_CREDITS = {b"translator-credits", b"translator_credits"}  # msgstr: the translators' names


class MoError(ValueError):
    pass


def read_mo(data: bytes) -> list[tuple[str, str]]:
    """(msgid, msgstr) in catalog order; plural entries give the singular forms,
    context prefixes are dropped; the header, credits and untranslated entries skipped."""
    if len(data) < 20:
        raise MoError(f"not a .mo file: only {len(data)} bytes")
    (magic,) = struct.unpack("<I", data[:4])
    if magic not in _MAGIC:
        raise MoError(f"not a .mo file: bad magic {magic:#x} (expected 0x950412de)")
    e = _MAGIC[magic]
    _rev, n, o_ids, o_strs = struct.unpack(e + "4I", data[4:20])
    pairs = []
    for i in range(n):
        ln, off = struct.unpack(e + "2I", data[o_ids + 8 * i: o_ids + 8 * i + 8])
        msgid = data[off: off + ln]
        ln, off = struct.unpack(e + "2I", data[o_strs + 8 * i: o_strs + 8 * i + 8])
        msgstr = data[off: off + ln]
        if not msgid or not msgstr:
            continue
        msgid = msgid.split(b"\x04", 1)[-1].split(b"\x00", 1)[0]
        msgstr = msgstr.split(b"\x00", 1)[0]
        if msgid in _CREDITS:
            continue
        pairs.append((msgid.decode("utf-8", "replace"), msgstr.decode("utf-8", "replace")))
    return pairs


_UNDERSCORE_ACCEL = re.compile(r"_(?=\w)")


def strip_accelerators(text: str) -> str:
    """LibreOffice marks accelerators with "~" (VCL) or one "_" before a letter (GTK .ui
    strings, "Lo_gical"); a string with several underscores holds identifiers, kept as is."""
    text = text.replace("~", "")
    if text.count("_") == 1:
        text = _UNDERSCORE_ACCEL.sub("", text)
    return text


# printf (%s, %2$d, %-5.2f; not the rare space flag: "100 % sicher" is prose),
# Qt/LibreOffice (%1, %PRODUCTNAME), $(ARG1), ${var}, {name}
_PLACEHOLDER = re.compile(r"%(?:\d+\$)?[-+#0]*\d*(?:\.\d+)?[a-zA-Z]|%\d|%[A-Z_]{2,}|\$\(\w+\)|\$\{\w+\}|\{\w*\}")


def has_placeholder(text: str) -> bool:
    """UI strings with slots filled at run time are no sentences (and slots would teach the
    model to emit them)."""
    return bool(_PLACEHOLDER.search(text))
