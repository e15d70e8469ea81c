"""Finished sweep chunks on disk, so that a killed sweep resumes where it stopped.

A whole-set sweep runs for an hour or more and keeps its answers in memory until the end; the store
writes each chunk's translations and delays as it finishes (one small JSON file, written atomically by
whichever process streamed it). A chunk's file is named by everything its answers depend on: the
checkpoint and its precision, every policy of the run (a chunk streams them all together, and in
bfloat16 batch composition can flip near-ties), the session options and the chunk's sentences. Any other
sweep simply misses it; nothing stale is ever reused.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

Answers = list[tuple[int, int, str, list[int]]]  # (policy index, sentence index, text, delays)


class ChunkStore:
    def __init__(self, folder: str | Path, model, policies: Sequence, session_kw: dict):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        info = model.info
        self.run = json.dumps({"sha256": info.get("sha256", ""), "name": info.get("name", ""),
                               "path": str(info.get("path", "")), "precision": info.get("precision", "float32"),
                               "policies": [p.signature() for p in policies], "session": session_kw},
                              sort_keys=True, default=str)

    def _path(self, sentences: Sequence[str]) -> Path:
        key = hashlib.sha256((self.run + "\0" + "\n".join(sentences)).encode("utf-8")).hexdigest()[:32]
        return self.folder / f"{key}.json"

    def get(self, chunk: Sequence[int], sources: Sequence[str]) -> Answers | None:
        """The chunk's answers if a run with the same key finished it, with this corpus' sentence indices."""
        path = self._path([sources[i] for i in chunk])
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # never written, or cut short by a kill: stream it again
        return [(k, chunk[j], text, delays) for k, j, text, delays in saved]

    def put(self, chunk: Sequence[int], sources: Sequence[str], answers: Answers) -> None:
        where = {i: j for j, i in enumerate(chunk)}  # positions in the chunk: the same chunk of another corpus
        path = self._path([sources[i] for i in chunk])
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([(k, where[i], text, delays) for k, i, text, delays in answers]),
                       encoding="utf-8")
        os.replace(tmp, path)  # atomic: a reader sees the whole chunk or none of it


def clear(folder: str | Path) -> None:
    """Drop a finished sweep's chunks (its results are written)."""
    folder = Path(folder)
    for f in [*folder.glob("*.json"), *folder.glob("*.tmp")]:
        f.unlink()
    try:
        folder.rmdir()
    except OSError:
        pass  # something else lives there (or nothing was stored): leave it
