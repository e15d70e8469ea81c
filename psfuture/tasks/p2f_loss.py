"""The loss for P2F with a down-weighted unsupported rest (`--prefix-past-weight`).

    fairseq-train ... --task prefix_to_full --prefix-past-weight 0.3 --criterion p2f_label_smoothed_cross_entropy

fairseq's label-smoothed cross-entropy, with each target token's loss scaled by the batch's `target_weight`
(PrefixDataset.collater: 1 up to what a cut prefix supports, the weight past it). A batch without weights is
plain label smoothing. The gradient stays normalised by all target tokens, as fairseq's is, so a weight < 1
also lowers the effective learning rate on prefix pairs: the point is a smaller pull towards guessing.
"""
from dataclasses import dataclass

from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (LabelSmoothedCrossEntropyCriterion,
                                                             LabelSmoothedCrossEntropyCriterionConfig,
                                                             label_smoothed_nll_loss)

from .prefix_to_full import WEIGHTED_LOSS as NAME


@dataclass
class P2FCriterionConfig(LabelSmoothedCrossEntropyCriterionConfig):
    pass


@register_criterion(NAME, dataclass=P2FCriterionConfig)
class P2FLabelSmoothedCrossEntropy(LabelSmoothedCrossEntropyCriterion):
    weighs_targets = True  # what PrefixToFullTask.build_criterion asks of a criterion when W < 1

    def compute_loss(self, model, net_output, sample, reduce=True):
        weight = sample.get("target_weight")
        if weight is None:
            return super().compute_loss(model, net_output, sample, reduce=reduce)
        lprobs, target = self.get_lprobs_and_target(model, net_output, sample)
        loss, nll_loss = label_smoothed_nll_loss(lprobs, target, self.eps, ignore_index=self.padding_idx,
                                                 reduce=False)
        # The logged nll stays unweighted, comparable with a plain run's.
        loss = loss * weight[:, self.ignore_prefix_size:].reshape(-1, 1).to(loss)
        return (loss.sum(), nll_loss.sum()) if reduce else (loss, nll_loss)
