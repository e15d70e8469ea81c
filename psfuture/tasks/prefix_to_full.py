"""Prefix-to-Full (P2F) fine-tuning as a fairseq task.

    fairseq-train data/bin --user-dir psfuture --task prefix_to_full --prefix-ratio 0.5 ...

A share of the training pairs get their source cut to a random prefix while the target stays the full
translation (or, with --prefix-target proportional, is cut to the same share; with --prefix-target aligned, to
its last token word-aligned inside the prefix (psfuture.tasks.alignment); or, with --prefix-past-weight W, stays
full with the loss past the proportional share scaled by W), so an offline model learns what to say from partial
input, as the simultaneous engine will feed it. With --prefix-future N a cut
prefix is followed by N <unk> and </s>, the pseudo-future PsFuture's second pass sends, so that pass is
in distribution. The mix, the prefix unit, EOS on the prefix and the targets are psfuture's choices, not the PsFuture paper's. Valid and
test splits stay full pairs, and so does inference: a P2F model is an ordinary translation model.
"""
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from fairseq import utils
from fairseq.data import BaseWrapperDataset
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask
from omegaconf import II

from psfuture.tasks.alignment import WORD_START, AlignmentTable, aligned_len, table_path

WEIGHTED_LOSS = "p2f_label_smoothed_cross_entropy"  # registered by psfuture.tasks.p2f_loss

logger = logging.getLogger(__name__)
PREFIX_UNITS = ChoiceEnum(["word", "token"])
PREFIX_EOS = ChoiceEnum(["keep", "drop"])
PREFIX_TARGET = ChoiceEnum(["full", "proportional", "aligned"])
CUT_TARGETS = ("proportional", "aligned")
# Bounds of the numeric P2F settings (None: unbounded above), checked by the task and, before fairseq starts,
# by scripts/train_p2f.py.
BOUNDS = {"prefix_ratio": (0, 1), "prefix_min_share": (0, 1), "prefix_past_weight": (0, 1),
          "prefix_curriculum": (0, None), "prefix_future": (0, None)}


def out_of_range(name: str, value: float) -> str | None:
    """What `value` of setting `name` must be, when it is not (e.g. "in [0, 1]"); None when it is fine."""
    low, high = BOUNDS[name]
    if low <= value and (high is None or value <= high):
        return None
    return f">= {low}" if high is None else f"in [{low}, {high}]"


def word_start_mask(symbols: list[str]) -> np.ndarray:
    """For each dictionary index: does that piece begin a source word?"""
    return np.array([s.startswith(WORD_START) for s in symbols], dtype=bool)


def cut_points(tokens: np.ndarray, word_start: np.ndarray | None) -> np.ndarray:
    """Lengths the prefixes of `tokens` (EOS stripped) may have: every whole-word prefix, including the full
    sentence; every token prefix when `word_start` is None. The first token always opens a word."""
    n = len(tokens)
    if word_start is None:
        return np.arange(1, n + 1)
    return np.append(np.flatnonzero(word_start[tokens[1:]]) + 1, n)


def sample_prefix_len(rng: np.random.Generator, tokens: np.ndarray, word_start: np.ndarray | None,
                      ratio: float, min_share: float = 0.0) -> int | None:
    """Length to cut `tokens` to, uniform over the `cut_points` holding at least `min_share` of its tokens (the
    full sentence always qualifies), with probability `ratio`; None keeps it full."""
    if len(tokens) == 0 or rng.random() >= ratio:
        return None
    cuts = cut_points(tokens, word_start)
    if min_share > 0:
        cuts = cuts[cuts >= min_share * len(tokens)]
    return int(cuts[rng.integers(len(cuts))])


def proportional_len(prefix_len: int, source_len: int, target_len: int) -> int:
    """Target tokens a source prefix of `prefix_len` of `source_len` tokens supports, read as the same share of
    the target (Niehues et al. 2018; Arivazhagan et al. 2020); at least one token, so no example is empty."""
    return max(1, min(target_len, round(target_len * prefix_len / source_len)))


class PrefixDataset(BaseWrapperDataset):
    """Cuts the source of a share of examples to a random prefix. Targets stay full, and so do the sizes used
    for batching (an upper bound). Which examples and where is a function of (seed, epoch, index) only, and with
    a curriculum of the update it is fetched for, so it is the same in every distributed rank, data-loader worker
    and uninterrupted rerun."""

    def __init__(self, dataset, eos: int, word_start: np.ndarray | None, ratio: float, keep_eos: bool, seed: int,
                 target: str = "full", future: tuple[int, ...] = (), past_weight: float = 1.0, alignment=None,
                 min_share: float = 0.0, curriculum: int = 0, update: int = 0):
        super().__init__(dataset)
        self.eos, self.word_start, self.ratio, self.keep_eos, self.seed = eos, word_start, ratio, keep_eos, seed
        self.future = tuple(future)  # pseudo-future ids after a cut prefix (then EOS), as PsFuture's q pass sends
        self.target = target  # a plain str: a fairseq ChoiceEnum member does not pickle into loader workers
        self.past_weight = past_weight  # loss weight of a full target's tokens past the proportional share
        self.alignment = alignment  # an AlignmentTable of this split, for target="aligned"
        self.min_share = min_share  # shortest prefix drawn, as a share of the source's tokens
        self.curriculum = curriculum  # updates over which that floor falls from the whole source to min_share
        self.update = update  # the update the next batches train; the task's train_step keeps it current
        if target == "aligned" and alignment is None:
            raise ValueError("--prefix-target aligned needs the split's alignment table")
        self.epoch = 1

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        # Prefixes change every epoch; a reused data loader keeps its workers' copy of the old epoch.
        return False

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.epoch = epoch

    def prefix_len(self, index: int, tokens: torch.Tensor) -> int | None:
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        return sample_prefix_len(rng, tokens.numpy(), self.word_start, self.ratio, self.floor())

    def floor(self) -> float:
        """Shortest prefix drawn now, as a share of the source: with a curriculum, from the whole sentence at
        update 0 down to min_share at update `curriculum` (long prefixes first, Glancing Future 2023's order)."""
        if not self.curriculum or self.update >= self.curriculum:
            return self.min_share  # exactly: 1 - (1 - S) is not always S in floating point
        return 1.0 - (1.0 - self.min_share) * (self.update / self.curriculum)

    def __getitem__(self, index):
        item = self.dataset[index]
        src = item["source"]
        body = src[:-1] if len(src) and src[-1] == self.eos else src
        cut = self.prefix_len(index, body)
        if cut is None:
            return item
        if cut == len(body) and self.keep_eos:
            return item  # the whole sentence, finished: a full pair
        prefix = body[:cut]
        if self.future and cut < len(body):
            prefix = torch.cat([prefix, prefix.new_tensor([*self.future, self.eos])])
        elif self.keep_eos:
            prefix = torch.cat([prefix, prefix.new_tensor([self.eos])])
        cut_item = {**item, "source": prefix}
        if self.target in CUT_TARGETS or self.past_weight < 1.0:
            tgt = item["target"]
            tgt_body = tgt[:-1] if len(tgt) and tgt[-1] == self.eos else tgt
            if self.target == "aligned":
                ends = self.alignment[index]
                if len(ends) != len(tgt_body):
                    raise ValueError(f"{self.alignment.path}: example {index} has {len(ends)} aligned target tokens, "
                                     f"the data {len(tgt_body)}; rerun scripts/align_p2f.py on this data")
                supported = aligned_len(ends, cut)
            else:
                supported = proportional_len(cut, len(body), len(tgt_body)) if len(tgt_body) else 0
            if self.target not in CUT_TARGETS:
                cut_item["supported"] = supported  # past it (EOS included) the target says more than the prefix
            elif len(tgt_body):
                # No EOS on a cut target: the source is not finished (even when every word is in, without its EOS),
                # so the model must not learn to end the translation. fairseq's collater builds prev_output_tokens
                # from the target itself, so a target without EOS is still well formed.
                cut_item["target"] = tgt_body[:supported]
        return cut_item

    def collater(self, samples):
        batch = self.dataset.collater(samples)
        if self.past_weight < 1.0 and batch:
            supported = {s["id"]: s["supported"] for s in samples if "supported" in s}
            weight = torch.ones(batch["target"].shape)
            for row, index in enumerate(batch["id"].tolist()):  # the collater sorts rows by source length
                if index in supported:
                    weight[row, supported[index]:] = self.past_weight
            batch["target_weight"] = weight
        return batch


@dataclass
class PrefixToFullConfig(TranslationConfig):
    prefix_ratio: float = field(
        default=0.5, metadata={"help": "share of training pairs whose source is cut to a random prefix; "
                                       "the rest stay full pairs"})
    prefix_min_share: float = field(
        default=0.0, metadata={"help": "draw only prefixes holding at least this share of the source's tokens "
                                       "(long prefixes only: less of the target is unsupported); 0: any prefix"})
    prefix_curriculum: int = field(
        default=0, metadata={"help": "over this many updates the shortest prefix drawn falls linearly from the "
                                     "whole source to --prefix-min-share (long prefixes first); loads data in "
                                     "the training process so the schedule follows the update count; 0: none"})
    prefix_unit: PREFIX_UNITS = field(
        default="word", metadata={"help": "prefix length uniform over whole source words (prefixes end where "
                                          "streamed input can end) or over source tokens"})
    prefix_eos: PREFIX_EOS = field(
        default="drop", metadata={"help": "whether a prefix source ends with </s> like a full one (keep) or "
                                          "not (drop); match what the engine feeds the model (PsFuture's "
                                          "prefix_eos, False by default: drop)"})
    prefix_target: PREFIX_TARGET = field(
        default="full", metadata={"help": "target of a prefix pair: the full translation (full; the P2F of the "
                                          "paper as we read it, it teaches guessing the unread rest) or the "
                                          "same share of it as the prefix is of the source, with no EOS "
                                          "(proportional: supervise only what the prefix roughly supports), or "
                                          "up to its last token word-aligned inside the prefix, no EOS (aligned: "
                                          "needs <data>/train.align.npz from scripts/align_p2f.py)"})
    prefix_past_weight: float = field(
        default=1.0, metadata={"help": "with --prefix-target full: loss weight of a prefix pair's target tokens "
                                       "past the proportional share (EOS included); 1: plain P2F, 0: only "
                                       "what proportional keeps is supervised. Needs --criterion " + WEIGHTED_LOSS})
    prefix_future: int = field(
        default=0, metadata={"help": "append this many <unk> placeholders and </s> to every cut prefix "
                                     "(PsFuture's pseudo-future pass with placeholder=unk, k=N, future_eos): "
                                     "the model learns what to expect of an unread rest; 0: plain prefixes"})
    prefix_seed: int = II("common.seed")


@register_task("prefix_to_full", dataclass=PrefixToFullConfig)
class PrefixToFullTask(TranslationTask):
    cfg: PrefixToFullConfig

    def __init__(self, cfg: PrefixToFullConfig, src_dict, tgt_dict):
        super().__init__(cfg, src_dict, tgt_dict)
        self.update = 0  # the update the next training batches are for (train_step advances it)
        for name in BOUNDS:
            if bound := out_of_range(name, getattr(cfg, name)):
                raise ValueError(f"--{name.replace('_', '-')} must be {bound}, got {getattr(cfg, name)}")
        if cfg.prefix_past_weight < 1.0 and cfg.prefix_target != "full":
            raise ValueError("--prefix-past-weight weighs a full target's unsupported rest; with --prefix-target "
                             f"{cfg.prefix_target} there is none. Use --prefix-target full.")
        if cfg.prefix_past_weight < 1.0 and cfg.left_pad_target:
            # The weights count target positions from the left; a left-padded batch would weigh the wrong tokens.
            raise ValueError("--prefix-past-weight needs right-padded targets; drop --left-pad-target")
        if cfg.prefix_seed < 0:
            raise ValueError(f"the P2F seed (--seed) must be >= 0, got {cfg.prefix_seed}")
        self.word_start = None
        if cfg.prefix_unit == "word":
            self.word_start = word_start_mask(src_dict.symbols)
            if not self.word_start.any():
                raise ValueError(f"--prefix-unit word needs a SentencePiece dictionary (pieces starting with "
                                 f"{WORD_START!r}); none found in the source dictionary. Use --prefix-unit token.")

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        super().load_dataset(split, epoch=epoch, combine=combine, **kwargs)
        if split == self.cfg.train_subset:
            alignment = None
            if self.cfg.prefix_target == "aligned":
                ds, paths = self.datasets[split], utils.split_paths(self.cfg.data)
                alignment = AlignmentTable(table_path(paths[(epoch - 1) % len(paths)], split))  # as fairseq shards
                alignment.check(ds.src_sizes, ds.tgt_sizes)
            self.datasets[split] = PrefixDataset(
                self.datasets[split], self.src_dict.eos(), self.word_start, self.cfg.prefix_ratio,
                self.cfg.prefix_eos == "keep", self.cfg.prefix_seed, str(self.cfg.prefix_target),
                (self.src_dict.unk(),) * self.cfg.prefix_future, self.cfg.prefix_past_weight, alignment,
                self.cfg.prefix_min_share, self.cfg.prefix_curriculum, self.update)

    def get_batch_iterator(self, dataset, **kwargs):
        if isinstance(dataset, PrefixDataset) and dataset.curriculum:
            # Items are made when the trainer asks for the next batch, after the last update's train_step: the
            # curriculum then follows the update count exactly (loader workers and buffers would run ahead of it).
            if kwargs.get("num_workers") or kwargs.get("data_buffer_size"):
                logger.info("--prefix-curriculum: loading data in the training process (--num-workers 0, "
                            "--data-buffer-size 0) so that prefixes follow the update count")
            kwargs.update(num_workers=0, data_buffer_size=0)
        return super().get_batch_iterator(dataset, **kwargs)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        self.update = update_num + 1  # the batches fetched next train the next update (a new epoch's dataset too)
        train = self.datasets.get(self.cfg.train_subset)
        if isinstance(train, PrefixDataset):
            train.update = self.update
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def build_criterion(self, cfg, from_checkpoint=False):
        criterion = super().build_criterion(cfg, from_checkpoint)
        if self.cfg.prefix_past_weight < 1.0 and not getattr(criterion, "weighs_targets", False):
            # Any other criterion would ignore the weights and train plain P2F without a word.
            raise ValueError(f"--prefix-past-weight {self.cfg.prefix_past_weight} needs --criterion "
                             f"{WEIGHTED_LOSS}, which applies it")
        return criterion
