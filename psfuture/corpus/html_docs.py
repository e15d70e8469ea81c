"""Manuals shipped as HTML in English and German (DocBook or Sphinx output), aligned block
by block in files whose two translations have the same block structure."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import Pair
from .blocks import Block
from .clean import parse_html
from .fetch import Package

_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td", "th", "caption", "title",
           "blockquote"}
# Code, program output and the page furniture around the text.
_SKIP = {"pre", "code", "script", "style", "tt", "kbd", "samp"}
_SKIP_CLASSES = {"navheader", "navfooter", "toc", "headerlink", "related", "sphinxsidebar", "footer",
                 "list-of-tables", "list-of-figures", "list-of-examples", "screen", "programlisting",
                 "literallayout", "legalnotice", "highlight", "next", "prev"}


def _skipped(el) -> bool:
    if not isinstance(el.tag, str) or el.tag in _SKIP:
        return True
    return bool(_SKIP_CLASSES.intersection((el.get("class") or "").split()))


def html_blocks(data: bytes) -> list[Block]:
    """Innermost block elements in document order, as (tag path, text); a block holding
    other blocks (an <li> with <p>s) contributes through them."""
    root = parse_html(data)
    for link in root.xpath('//a[contains(@class, "headerlink")]'):  # Sphinx's "¶" after headings
        link.drop_tree()
    out: list[Block] = []

    def walk(el, path: str) -> None:
        if _skipped(el):
            return
        children = [c for c in el if isinstance(c.tag, str)]
        inner = any(c.tag in _BLOCKS or any(d.tag in _BLOCKS for d in c.iter() if isinstance(d.tag, str))
                    for c in children)
        if el.tag in _BLOCKS and not inner:
            # text_content() would include skipped inline code; keep it, it is the same in both
            out.append((f"{path}/{el.tag}", el.text_content()))
            return
        for c in children:
            walk(c, f"{path}/{el.tag}" if el.tag in _BLOCKS else path)

    walk(root, "")
    return out


def align_identical(de: list[Block], en: list[Block]) -> list[Pair]:
    """Pairs by position if both files have the same block structure, else none: a
    translator's added or dropped paragraph shifts every later block."""
    if [s for s, _ in de] != [s for s, _ in en]:
        return []
    return [(d, e) for (_, d), (_, e) in zip(de, en)]


def read_docs(de_dir: Path, en_dir: Path, en_glob: str = "*.html", de_name=lambda n: n) -> list[Pair]:
    """Pairs of every English file in en_dir whose German file de_dir/de_name(name) exists,
    files in name order."""
    pairs: list[Pair] = []
    for en_file in sorted(Path(en_dir).glob(en_glob)):
        de_file = Path(de_dir) / de_name(en_file.name)
        if de_file.is_file():
            pairs += align_identical(html_blocks(de_file.read_bytes()), html_blocks(en_file.read_bytes()))
    return pairs


@dataclass(frozen=True)
class Doc:
    """One manual: the German and English (package, directory) and how names differ."""
    name: str
    version: str
    license: str
    de: tuple[str, str]
    en: tuple[str, str]
    en_glob: str = "*.html"
    rename: tuple[str, str] = ("", "")  # (English, German) part of a file name

    def packages(self) -> tuple[Package, ...]:
        names = dict.fromkeys((self.de[0], self.en[0]))  # one package if both languages are in it
        return tuple(Package("deb", n, self.version, tuple(d + "/*" for p, d in (self.de, self.en) if p == n))
                     for n in names)

    def read(self, trees: list[Path]) -> list[Pair]:
        root = dict(zip(dict.fromkeys((self.de[0], self.en[0])), trees))
        en, de = self.rename
        return read_docs(root[self.de[0]] / self.de[1], root[self.en[0]] / self.en[1], self.en_glob,
                         (lambda n: n.replace(en, de)) if en else (lambda n: n))


DOCS = (
    Doc("debian-reference", "2.100", "GPL-2.0-or-later",
        ("debian-reference-de", "usr/share/debian-reference"),
        ("debian-reference-en", "usr/share/debian-reference"), "*.en.html", (".en.", ".de.")),
    Doc("debian-faq", "11.1", "SPI permission notice (copy, modify and translate, keeping the notice)",
        ("debian-faq-de", "usr/share/doc/debian/FAQ/de"), ("debian-faq", "usr/share/doc/debian/FAQ"),
        "*.en.html", (".en.", ".de.")),
    Doc("installation-guide", "20230508+deb12u1", "GPL-2.0",
        ("installation-guide-amd64", "usr/share/doc/installation-guide-amd64/de"),
        ("installation-guide-amd64", "usr/share/doc/installation-guide-amd64/en")),
    Doc("maint-guide", "1.2.53", "GPL-2.0-or-later",
        ("maint-guide-de", "usr/share/doc/maint-guide-de/html"), ("maint-guide", "usr/share/doc/maint-guide/html"),
        "*.en.html", (".en.", ".de.")),
    Doc("developers-reference", "12.18", "GPL-2.0",
        ("developers-reference-de", "usr/share/developers-reference/de"),
        ("developers-reference", "usr/share/developers-reference")),
    Doc("debian-edu-doc", "2.12.23~deb12u1", "GPL-2.0-or-later",
        ("debian-edu-doc-de", "usr/share/doc/debian-edu-doc-de"),
        ("debian-edu-doc-en", "usr/share/doc/debian-edu-doc-en"), "*-manual.html"),
    Doc("ubuntu-packaging-guide", "1.0.4", "CC-BY-SA-3.0",
        ("ubuntu-packaging-guide-html-de", "usr/share/doc/ubuntu-packaging-guide-html-de"),
        ("ubuntu-packaging-guide-html", "usr/share/doc/ubuntu-packaging-guide-html")),
)
