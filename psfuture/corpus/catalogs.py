"""User-interface catalogs (gettext .mo) of command-line tools and KDE applications."""
from __future__ import annotations

import re
from pathlib import Path

from . import Pair
from .fetch import Package
from .mo import has_placeholder, read_mo

LOCALE_DIR = "usr/share/locale/de/LC_MESSAGES"
MEMBERS = (LOCALE_DIR + "/*",)
# The command-line tools also hold English man pages (manpages.py): both sources unpack the same members.
MAN_MEMBERS = ("usr/share/man/man[1-8]/*",)
# KDE packages also hold their handbooks (kde_help.py): both sources unpack the same members.
KDE_MEMBERS = MEMBERS + ("usr/share/doc/HTML/de/*", "usr/share/doc/HTML/en/*")
# (package, version) in Debian 12; each ships a German catalog or handbook of some size.
CLI = (
    ("apt", "2.6.2"), ("aptitude-common", "0.8.13-5"), ("bash", "5.2.15-2+b13"),
    ("bison", "2:3.8.2+dfsg-1+b1"), ("coreutils", "9.1-1"), ("cpio", "2.13+dfsg-7.1"),
    ("debconf-i18n", "1.5.82"), ("diffutils", "1:3.8-4"), ("dpkg", "1.21.23"),
    ("e2fsprogs-l10n", "1.47.0-2"), ("findutils", "4.9.0-4"), ("gawk", "1:5.2.1-2"),
    ("gcc-12-locales", "12.2.0-14+deb12u1"), ("gettext", "0.21-12"), ("gettext-base", "0.21-12"),
    ("git", "1:2.39.5-0+deb12u3"), ("gnupg-l10n", "2.2.40-1.1+deb12u2"), ("grep", "3.8-5"),
    ("libc-l10n", "2.36-9+deb12u14"), ("libgpg-error-l10n", "1.46-1"), ("make", "4.3-4.1"),
    ("man-db", "2.11.2-2"), ("mc-data", "3:4.8.29-2"), ("nano", "7.2-1+deb12u1"),
    ("postgresql-15", "15.20-0+deb12u1"), ("postgresql-client-15", "15.20-0+deb12u1"),
    ("procps", "2:4.0.2-3"), ("psmisc", "23.6-1"), ("sed", "4.9-1+deb12u1"),
    ("sharutils", "1:4.15.2-9"), ("tar", "1.34+dfsg-1.2+deb12u1"),
    ("util-linux-locales", "2.38.1-5+deb12u3"), ("wget", "1.21.3-1+deb12u1"),
)
KDE = (
    ("akregator", "4:22.12.3-1"), ("ark", "4:22.12.3-1+deb12u1"), ("cantor", "4:22.12.3-1"),
    ("digikam-data", "4:7.9.0-1"), ("dolphin", "4:22.12.3-1"), ("filelight", "4:22.12.3-1"),
    ("gwenview", "4:22.12.3-1"), ("k3b-i18n", "22.12.3-1"), ("kalzium-data", "4:22.12.3-1"),
    ("kate5-data", "4:22.12.3-1"), ("kcalc", "4:22.12.3-1"), ("kde-config-systemd", "1.2.1-3.2"),
    ("kaddressbook", "4:22.12.3-1"), ("kdeconnect", "22.12.3-1"), ("kdenlive-data", "22.12.3-2+deb12u2"),
    ("kdepim-runtime", "4:22.12.3-1"),
    ("kdevelop-l10n", "4:22.12.2-1"), ("kdevelop-php-l10n", "22.12.2-1"),
    ("kdevelop-python-l10n", "22.12.2-1"), ("kexi-data", "1:3.2.0-3"), ("kget", "4:22.12.3-1"),
    ("kgpg", "4:22.12.3-1"), ("khelpcenter", "4:22.12.3-1"), ("kig", "4:22.12.3-1"),
    ("kile-l10n", "4:2.9.93-2"), ("kinfocenter", "4:5.27.5-2"), ("kio", "5.103.0-1+deb12u1"),
    ("kio-extras-data", "4:22.12.3-1"), ("kleopatra", "4:22.12.3-1"), ("kmahjongg", "4:22.12.3-1"),
    ("kmail", "4:22.12.3-1"), ("kmplot", "4:22.12.3-1"), ("kmymoney-common", "5.1.3-1"),
    ("knights", "22.12.3-1"), ("kompare", "4:22.12.3-1"), ("konqueror", "4:22.12.3-1"),
    ("konsole", "4:22.12.3-1+deb12u1"), ("kontact", "4:22.12.3-1"), ("korganizer", "4:22.12.3-1"),
    ("krita-l10n", "1:5.1.5+dfsg-2+deb12u1"), ("kstars-data", "5:3.6.2-2"),
    ("ktexteditor-data", "5.103.0-1.1"), ("kwalletmanager", "4:22.12.3-1"), ("kwin-data", "4:5.27.5-3"),
    ("labplot-data", "2.9.0-1"), ("libkf5akonadi-data", "4:22.12.3-1"),
    ("libkf5calendarsupport-data", "4:22.12.3-1"), ("libkf5configwidgets-data", "5.103.0-1"),
    ("libkf5eventviews-data", "4:22.12.3-1"), ("libkf5incidenceeditor-data", "22.12.3-1"),
    ("libkf5kdelibs4support-data", "5.103.0-1"), ("libkf5mailcommon-data", "4:22.12.3-1"),
    ("libkf5pimcommon-data", "4:22.12.3-1"), ("libkf5textwidgets-data", "5.103.0-1"),
    ("libkf5xmlgui-data", "5.103.0-1"), ("lokalize", "4:22.12.3-1"), ("marble-data", "4:22.12.3-1"),
    ("okular", "4:22.12.3-1+deb12u1"), ("partitionmanager", "22.12.3-1"),
    ("plasma-desktop-data", "4:5.27.5-2"), ("plasma-workspace-data", "4:5.27.5-2+deb12u2"),
    ("rkward-data", "0.7.5-1"), ("skrooge-common", "2.29.0-1"), ("systemsettings", "4:5.27.5-2"),
    ("elisa", "22.12.3-1"), ("kwrite", "4:22.12.3-1"),
)
CLI_PACKAGES = tuple(Package("deb", n, v, MEMBERS + MAN_MEMBERS) for n, v in CLI)
KDE_PACKAGES = tuple(Package("deb", n, v, KDE_MEMBERS) for n, v in KDE)

# KDE's translator-credit entries (msgctxt "NAME OF TRANSLATORS"; the context is dropped).
_CREDITS = {"Your names", "Your emails"}
# "&File" and "Save &As", but not "&amp;" or "a && b" (a literal "&").
_KDE_ACCEL = re.compile(r"&(?=[^\W_])(?![a-zA-Z]+;|#\d+;)")
# gcc quotes with %< %>, and "%%" prints "%".
_GCC_QUOTE = re.compile(r"%[<>]")
# A help line's option column ("  -a, --all        "), identical on both sides.
_OPTION_COLUMN = re.compile(r"^\s*-\S*(?:[ ,]+-\S+)*(?:[ =]\S+)?\s{2,}(?=\S)")


def kde_text(text: str) -> str:
    return _KDE_ACCEL.sub("", text).replace("&&", "&")


def _lines(text: str) -> list[str]:
    text = _GCC_QUOTE.sub("'", text).replace("%%", "%")
    return [ln for ln in text.split("\n") if ln.strip()]


def split_entry(de: str, en: str) -> list[Pair]:
    """Option lists give one pair per option where both sides have as many lines, without
    the option column; other multi-line strings are prose wrapped at different words in
    the two languages, so they stay one pair."""
    de_lines, en_lines = _lines(de), _lines(en)
    if len(de_lines) == len(en_lines) and any(_OPTION_COLUMN.match(ln) for ln in en_lines):
        return [(_OPTION_COLUMN.sub("", d).strip(), _OPTION_COLUMN.sub("", e).strip())
                for d, e in zip(de_lines, en_lines)]
    return [(" ".join(d.strip() for d in de_lines), " ".join(e.strip() for e in en_lines))]


def read_catalogs(trees: list[Path], kde: bool = False) -> list[Pair]:
    """(German, English) pairs of every German catalog, packages in given order; strings
    with run-time placeholders (%s, %1, {name}) dropped."""
    pairs: list[Pair] = []
    for tree in trees:
        for f in sorted((Path(tree) / LOCALE_DIR).glob("*.mo")):
            for en, de in read_mo(f.read_bytes()):
                if en in _CREDITS or has_placeholder(en) or has_placeholder(de):
                    continue
                if kde:
                    de, en = kde_text(de), kde_text(en)
                pairs += split_entry(de, en)
    return pairs
