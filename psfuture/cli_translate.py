"""`psfuture translate`: standard input as one stream, its English on standard output as it is written, and
optionally as subtitles (--srt/--vtt, psfuture.subtitles)."""
from __future__ import annotations

import codecs
import json
import os
import sys
import time

from psfuture import subtitles
from psfuture.cli_common import CliError, _calibration, _load, _say_model
from psfuture.serve.protocol import WordBuffer


def _read_chunks(stream):
    """Text from stdin as it arrives (word by word when typed into a pipe), not only at line ends."""
    fd = stream.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while True:
        data = os.read(fd, 4096)
        if not data:
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
            return
        text = decoder.decode(data)
        if text:
            yield text


class _Printer:
    """Writes a stream's output: each segment's English on a line as it is written, or a READ/WRITE timeline."""

    def __init__(self, out, timeline: bool, clock):
        self.out, self.timeline, self.clock = out, timeline, clock
        self.written = subtitles.Timeline()  # each word with when it was written, for subtitles
        self.read = 0  # source words shown as read
        self.pending: list[str] = []  # source words pushed, not yet shown as read
        self.line_open = False

    def source(self, words: list[str]) -> None:
        self.pending += words

    def show(self, stream) -> None:
        for segment, word, delay in stream.pop():
            self.written.add(segment, word, self.clock(delay))
            if self.timeline:
                self._reads(delay)
                self.out.write(f"WRITE {word}\t(after {delay} source words)\n")
            else:
                self.out.write((" " if self.line_open else "") + word)
                self.line_open = True
        for segment in stream.pop_segments():
            if self.timeline:
                from .serve.engine import average_lagging
                self._reads(segment.start + len(segment.source))
                al = average_lagging([d - segment.start for d in segment.delays], len(segment.source))
                self.out.write(f"SEGMENT {segment.index} ({segment.cut}): {len(segment.source)} source words, "
                               f"AL {al}\n")
            else:
                self.out.write("\n")
                self.line_open = False
        self.out.flush()

    def _reads(self, upto: int) -> None:
        for word in self.pending[:max(0, upto - self.read)]:
            self.out.write(f"READ  {word}\n")
        del self.pending[:max(0, upto - self.read)]
        self.read = max(self.read, upto)

    def end(self, stream) -> None:
        if self.timeline:
            from .serve.engine import _jsonable
            self.out.write(f"END   {len(stream.segments)} segments, {stream.source_read} source words; "
                           f"{json.dumps(_jsonable(stream.stats))}\n")
        elif self.line_open:
            self.out.write("\n")
        self.out.flush()


def translate(args) -> int:
    """All of standard input is one stream, however long: the engine cuts it into segments as the words arrive
    (and at line ends, unless --no-line-cuts), and each segment's English is printed on a line as it is written."""
    import torch

    from .longform import LongSession
    from .serve.engine import build_policy, build_segmenter
    _, model, settings = _load(args)
    files = _subtitle_files(args)  # a bad path fails now, not after the talk
    _say_model(model)
    torch.set_num_threads(args.threads)
    stream = LongSession(model, build_policy(settings, _calibration(model)), build_segmenter(settings))
    t0 = time.perf_counter()
    # --rate: source word d has been spoken at d / rate s, so a word with delay d can appear then.
    clock = (lambda delay: delay / args.rate) if args.rate else (lambda delay: time.perf_counter() - t0)
    printer, buffer = _Printer(sys.stdout, args.timeline, clock), WordBuffer()
    try:
        _translate(args, stream, printer, buffer)
    finally:  # Ctrl-C still leaves the subtitles of what was written
        cues = subtitles.cues(printer.written.segments)
        for kind, f in files.items():
            with f:
                f.write(subtitles.FORMATS[kind](cues))
    return 0


def _subtitle_files(args) -> dict:
    files = {}
    for kind in subtitles.FORMATS:
        path = getattr(args, kind)
        if path:
            try:
                files[kind] = open(path, "w", encoding="utf-8")
            except OSError as e:
                raise CliError(f"--{kind} {path}: {e.strerror or e}") from None
    return files


def _translate(args, stream, printer, buffer) -> None:
    in_line = 0  # words of the current line pushed so far

    def push(words, boundary: bool = False):
        nonlocal in_line
        in_line = 0 if boundary else in_line + len(words)
        printer.source(words)
        for i, word in enumerate(words):  # one READ step per word, however the text arrived (as the server does),
            # except a line's last word: it comes with the line's end and goes straight to the segment's final
            # decode, as SimulEval feeds an agent a sentence's last word (so the CLI and the agents agree).
            stream.push([word], boundary=boundary and i == len(words) - 1)
            printer.show(stream)

    for chunk in _read_chunks(sys.stdin):
        lines = chunk.split("\n")
        for i, part in enumerate(lines):
            if i == len(lines) - 1:
                push(buffer.feed(part))
            elif args.line_cuts:
                words = buffer.feed(part) + buffer.flush()
                if words:
                    push(words, boundary=True)
                elif in_line:  # the line's words came earlier (typed word by word): its end ends the segment
                    stream.cut()
                    printer.show(stream)
                    in_line = 0
                elif not args.timeline:
                    print(flush=True)  # an empty line in, an empty line out: line-aligned input stays aligned
            else:
                push(buffer.feed(part + " "))
    push(buffer.flush())
    stream.finish()
    printer.show(stream)
    printer.end(stream)
