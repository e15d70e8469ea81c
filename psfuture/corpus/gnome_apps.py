"""GNOME applications (Debian packages): their Mallard help and their UI catalogs.
Training data; the GNOME desktop help (gnome.py) is held out for valid and test."""
from __future__ import annotations

from pathlib import Path

from . import Pair
from .fetch import Package
from .gnome import HELP_DIR, read_pages
from .mo import has_placeholder, read_mo, strip_accelerators

LOCALE_DIR = "usr/share/locale/de/LC_MESSAGES"
MEMBERS = (HELP_DIR + "/C/*", HELP_DIR + "/de/*", LOCALE_DIR + "/*")
# (package, version) in Debian 12; every one ships German help pages or a German catalog.
APPS = (
    ("accerciser", "3.40.0-2"),
    ("aisleriot", "1:3.22.23-1"),
    ("anjuta-common", "2:3.34.0-8"),
    ("baobab", "43.0-1"),
    ("brasero-common", "3.12.3-2"),
    ("cheese-common", "43.0-1"),
    ("eog", "43.2-1+deb12u1"),
    ("evince-common", "43.1-2+deb12u1"),
    ("evolution-common", "3.46.4-2+deb12u1"),
    ("file-roller", "43.0-1"),
    ("five-or-more", "1:3.32.3-1"),
    ("four-in-a-row", "1:3.38.1-1+b1"),
    ("gedit-common", "44.2-1"),
    ("gitg", "41-2"),
    ("gnome-boxes", "43.2-1"),
    ("gnome-builder", "43.6-3"),
    ("gnome-calculator", "1:43.0.1-2"),
    ("gnome-characters", "43.1-1+deb12u1"),
    ("gnome-chess", "1:43.1-1"),
    ("gnome-clocks", "43.0-1"),
    ("gnome-contacts", "43.1-1"),
    ("gnome-control-center-data", "1:43.6-2~deb12u1"),
    ("gnome-devel-docs", "40.3-1"),
    ("gnome-disk-utility", "43.0-1"),
    ("gnome-font-viewer", "43.0-1"),
    ("gnome-klotski", "1:3.38.2-1"),
    ("gnome-logs", "43.0-1"),
    ("gnome-mahjongg", "1:3.38.3-2"),
    ("gnome-maps", "43.5-2~deb12u1"),
    ("gnome-mines", "1:40.1-1"),
    ("gnome-nibbles", "1:3.38.2-2+b1"),
    ("gnome-photos", "43.0-2"),
    ("gnome-robots", "1:40.0-2"),
    ("gnome-shell-common", "43.9-0+deb12u2"),
    ("gnome-sudoku", "1:43.1-1"),
    ("gnome-system-monitor", "42.0-2"),
    ("gnome-taquin", "3.38.1-2+b1"),
    ("gnome-terminal-data", "3.46.8-1"),
    ("gnome-tetravex", "1:3.38.2-3"),
    ("gnome-weather", "43.0-1"),
    ("gnote", "43.1-1"),
    ("gnumeric-common", "1.12.55-1"),
    ("hitori", "3.38.4-2"),
    ("iagno", "1:3.38.1-2"),
    ("lightsoff", "1:40.0.1-1"),
    ("nautilus-data", "43.2-1"),
    ("orca", "43.1-1"),
    ("polari", "43.0-1"),
    ("quadrapassel", "1:40.2-1"),
    ("rhythmbox-data", "3.4.6-2"),
    ("seahorse", "43.0-1"),
    ("simple-scan", "42.5-2"),
    ("swell-foop", "1:41.1-1"),
    ("tali", "1:40.9-1"),
    ("totem-common", "43.0-2"),
    ("zenity-common", "3.44.0-1"),
)
PACKAGES = tuple(Package("deb", name, version, MEMBERS) for name, version in APPS)


def read_app_help(trees: list[Path], skip: tuple[str, ...] = ("gnome-help",)) -> list[Pair]:
    """Pairs of every help document that has German pages, documents in name order."""
    pairs: list[Pair] = []
    for tree in trees:
        en_root = Path(tree) / HELP_DIR / "C"
        docs = sorted(d.name for d in en_root.iterdir() if d.is_dir()) if en_root.is_dir() else []
        for doc in docs:
            if doc not in skip and (Path(tree) / HELP_DIR / "de" / doc).is_dir():
                pairs += [p for page in read_pages(tree, doc).values() for p in page]
    return pairs


def read_app_ui(trees: list[Path]) -> list[Pair]:
    """UI strings without mnemonics; placeholder strings and the time-zone name lists dropped."""
    pairs: list[Pair] = []
    for tree in trees:
        for f in sorted((Path(tree) / LOCALE_DIR).glob("*.mo")):
            if f.stem.endswith("-timezones"):
                continue
            pairs += [(strip_accelerators(de), strip_accelerators(en)) for en, de in read_mo(f.read_bytes())
                      if not (has_placeholder(en) or has_placeholder(de))]
    return pairs
