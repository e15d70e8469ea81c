"""German man pages (manpages-de, translated with po4a) beside the English pages of the
packages they translate, aligned paragraph by paragraph in sections (from one heading to the
next) whose two translations have the same structure."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

from . import Pair
from .blocks import Block
from .catalogs import MAN_MEMBERS as EN_MEMBERS
from .fetch import Package
from .kde_help import align_sections

MAN_DIR = "usr/share/man"
DE_MEMBERS = (MAN_DIR + "/de/man[1-8]/*",)
DE_PACKAGES = tuple(Package("deb", n, "4.18.1-1", DE_MEMBERS) for n in ("manpages-de", "manpages-de-dev"))
# (package, version) in Debian 12 holding English originals of manpages-de's pages, besides
# the command-line tools of catalogs.CLI (which unpack their man pages too).
EN = (
    ("adduser", "3.134"), ("anacron", "2.3-36"), ("at", "3.2.5-1+b1"), ("bsdextrautils", "2.38.1-5+deb12u3"),
    ("bsdutils", "1:2.38.1-5+deb12u3"), ("bzip2", "1.0.8-5+b1"), ("cdrskin", "1.5.4-1"), ("cron", "3.0pl1-162"),
    ("debianutils", "5.7-0.5~deb12u1"), ("dpkg-dev", "1.21.23"), ("e2fsprogs", "1.47.0-2+b2"), ("ed", "1.19-1"),
    ("eject", "2.38.1-5+deb12u3"), ("fdisk", "2.38.1-5+deb12u3"), ("file", "1:5.44-3"),
    ("groff-base", "1.22.4-10"), ("groff", "1.22.4-10"), ("grub-common", "2.06-13+deb12u2"),
    ("grub2-common", "2.06-13+deb12u2"), ("gzip", "1.12-1"), ("hostname", "3.23+nmu1"), ("icoutils", "0.32.3-4"),
    ("init-system-helpers", "1.65.2+deb12u1"), ("iproute2", "6.1.0-3"), ("iputils-ping", "3:20221126-1+deb12u1"),
    ("kbd", "2.5.1-1+b1"), ("kmod", "30+20221128-1"), ("less", "590-2.1~deb12u2"), ("libsane-common", "1.2.1-2"),
    ("login", "1:4.13+dfsg1-1+deb12u2"), ("manpages-dev", "6.03-2"), ("manpages", "6.03-2"),
    ("mount", "2.38.1-5+deb12u3"), ("mtools", "4.0.33-1+really4.0.32-1"), ("mutt", "2.2.12-0.1~deb12u2"),
    ("ncurses-bin", "6.4-4"), ("net-tools", "2.10-0.1+deb12u2"), ("netpbm", "2:11.01.00-2"),
    ("nfs-common", "1:2.6.2-4+deb12u1"), ("openssh-client", "1:9.2p1-2+deb12u10"),
    ("passwd", "1:4.13+dfsg1-1+deb12u2"), ("recutils", "1.9-2"), ("rsync", "3.5.0+ds1-0+deb12u1"),
    ("sane-utils", "1.2.1-2"), ("sudo", "1.9.13p3-1+deb12u4"), ("sysstat", "12.6.1-1"),
    ("systemd-homed", "252.39-1~deb12u2"), ("systemd-resolved", "252.39-1~deb12u2"),
    ("systemd-timesyncd", "252.39-1~deb12u2"), ("systemd", "252.39-1~deb12u2"), ("sysvinit-utils", "3.06-4"),
    ("texinfo", "6.8-6+b1"), ("udev", "252.39-1~deb12u2"), ("util-linux", "2.38.1-5+deb12u3"),
    ("uuid-runtime", "2.38.1-5+deb12u3"), ("vorbis-tools", "1.4.2-1+b1"), ("wdiff", "1.2.2-5"),
    ("wodim", "9:1.1.11-3.4"), ("x11-xserver-utils", "7.7+9+b1"), ("xserver-xorg-core", "2:21.1.7-3+deb12u13"),
    ("xz-utils", "5.4.1-1+deb12u2"),
)
EN_PACKAGES = tuple(Package("deb", n, v, EN_MEMBERS) for n, v in EN)
_BREAK = {"SH", "SS", "PP", "P", "LP", "TP", "TQ", "IP", "HP", "sp", "RS", "RE", "EX", "EE", "nf", "fi",
          "in", "ti", "SY", "YS", "OP", "UR", "UE", "MT", "ME", "TS", "TE", "de", "ig", ".."}
_FONT = {"B", "I", "SM", "SB", "BR", "BI", "IB", "IR", "RB", "RI"}
_ESCAPES = [
    (re.compile(r'\\".*'), ""), (re.compile(r"\\\\|\\e"), "\0"),  # comments; a printed backslash, kept aside
    (re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)"), ""), (re.compile(r"\\[,/&:%|^]"), ""),
    (re.compile(r"\\\*?\((?:lq|rq|Lq|Rq)"), '"'), (re.compile(r"\\\*?\((?:aq|cq|oq|Aq)"), "'"),
    (re.compile(r"\\\*(?:\[.*?\]|\(..|.)"), ""), (re.compile(r"\\\(dq"), '"'),
    (re.compile(r"\\(?:\(em|\[em\])"), "—"), (re.compile(r"\\\(en"), "–"), (re.compile(r"\\\(bu"), "•"),
    (re.compile(r"\\\(co"), "©"), (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\[mMFYVngk](?:\[[^\]]*\]|\(..|.)"), ""), (re.compile(r"\\[hvwlLoxXbZDSABCNR]'[^']*'"), ""),
    (re.compile(r"\\[-~0 t]"), lambda m: "-" if m.group(0) == "\\-" else " "),
    (re.compile(r"\\([.'`])"), lambda m: m.group(1)), (re.compile(r"\\s[-+]?\d"), ""),
    (re.compile(r"\\."), ""), (re.compile("\0"), lambda m: "\\"),  # any other escape: motion, colour, ...
]
_ARG = re.compile(r'"([^"]*)"|(\S+)')


def roff_text(line: str) -> str:
    for pattern, repl in _ESCAPES:
        line = pattern.sub(repl, line)
    return line


def _macro_text(name: str, args: str) -> str:
    words = [a or b for a, b in _ARG.findall(args)]
    # .BR ls (1) reads "ls(1)": alternating fonts join their arguments without spaces
    return ("" if len(name) == 2 and name != "SM" and name != "SB" else " ").join(words)


def man_blocks(text: str) -> list[Block]:
    """Paragraphs as (macro that opened them, text); headings and .TP terms are blocks of
    their own; no-fill regions (.nf/.EX: code and examples) and tables are left out."""
    blocks: list[Block] = []
    kind, lines, skip, tag_next = "", [], False, False

    def flush():
        body = " ".join(ln for ln in lines if ln).strip()
        if body and not skip:
            blocks.append((kind, body))
        lines.clear()

    for raw in text.split("\n"):
        if raw.startswith((".\\\"", "'\\\"", '.\\"')) or raw.strip() in (".", ""):
            continue
        m = re.match(r"[.'](\S+)\s*(.*)", raw)
        name, args = (m.group(1), m.group(2)) if m else ("", "")
        if m and name in _BREAK:
            flush()
            if name in ("nf", "EX", "TS", "de", "ig"):
                skip = True
            elif name in ("fi", "EE", "TE", ".."):
                skip = False
            kind = name
            if name in ("SH", "SS") and args and not skip:
                blocks.append(("/title", roff_text(_macro_text("B", args)).strip()))
            tag_next = name in ("TP", "TQ")
            continue
        line = roff_text(_macro_text(name, args) if name in _FONT else raw if not m else "").strip()
        if tag_next:  # the line after .TP is the term
            if not skip:
                blocks.append(("TP/term", line))
            tag_next = False
        else:
            lines.append(line)
    flush()
    # headings start the sections of align_sections: their kind must end with /title
    return [(k if k.endswith("/title") else k + "/p", t) for k, t in blocks]


def _without_credits(blocks: list[Block]) -> list[Block]:
    """manpages-de ends each page with a section of its own: the translators' names."""
    for i, (kind, text) in enumerate(blocks):
        if kind == "/title" and text.upper() == "ÜBERSETZUNG":
            return blocks[:i]
    return blocks


def _read(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace")


def _pages(trees: list[Path], pattern: str) -> dict[str, Path]:
    """"man1/ls.1.gz" -> its file, from the first tree that has it; links (aliases) left out."""
    pages: dict[str, Path] = {}
    for tree in trees:
        for f in sorted((Path(tree) / MAN_DIR).glob(pattern)):
            if f.is_file() and not f.is_symlink():
                pages.setdefault(f"{f.parent.name}/{f.name}", f)
    return pages


def read_manpages(trees: list[Path]) -> list[Pair]:
    """Every German page (usr/share/man/de) with an English page of the same section and
    name (usr/share/man), pages in name order."""
    de_pages, en_pages = _pages(trees, "de/man[1-8]/*"), _pages(trees, "man[1-8]/*")
    pairs: list[Pair] = []
    for name in sorted(de_pages.keys() & en_pages.keys()):
        pairs += align_sections(_without_credits(man_blocks(_read(de_pages[name]))), man_blocks(_read(en_pages[name])))
    return pairs
