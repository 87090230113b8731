"""How well out-of-distribution scores separate two sets: AUROC and FPR at 95% TPR."""

from __future__ import annotations

import torch

from ..errors import InvalidInputError
from ..models._ood_features import accepting_threshold

__all__ = ["ood_metrics"]


def ood_metrics(in_scores: torch.Tensor, out_scores: torch.Tensor) -> tuple[float, float]:
    """Return ``(auroc, fpr_at_95_tpr)`` for scores where higher means out of distribution.

    ``auroc`` is the area under the ROC curve with the out-of-distribution images
    as positives: the chance that an out-of-distribution image scores higher than
    an in-distribution one, ties counting half. ``fpr_at_95_tpr`` is the measure of
    the OOD literature (FPR95): at the threshold that accepts 95% of the
    in-distribution images (the smallest in-distribution score with at least 95% at
    or below it, as :func:`~digitrec.fit_ood` sets it), the share of
    out-of-distribution images accepted too. Lower is better; 0.05 means 5% slip through.

    Args:
        in_scores: Scores of in-distribution images, shape ``(N,)``.
        out_scores: Scores of out-of-distribution images, shape ``(M,)``.

    Raises:
        InvalidInputError: If either is empty or holds NaN.

    Example:
        >>> digitrec.ood_metrics(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0]))
        (1.0, 0.0)
    """
    inside = torch.as_tensor(in_scores).detach().double().flatten().cpu()
    outside = torch.as_tensor(out_scores).detach().double().flatten().cpu()
    if inside.numel() == 0 or outside.numel() == 0:
        raise InvalidInputError(
            f"need scores of both kinds, got {inside.numel()} in and {outside.numel()} out"
        )
    if inside.isnan().any() or outside.isnan().any():
        raise InvalidInputError("scores must not be NaN")
    # Mann-Whitney U: the AUROC from average ranks over both sets.
    _, inverse, counts = torch.unique(
        torch.cat([inside, outside]), return_inverse=True, return_counts=True
    )
    ends = counts.cumsum(0).double()
    ranks = (ends - (counts.double() - 1) / 2)[inverse]
    n_in, n_out = inside.numel(), outside.numel()
    auroc = (float(ranks[n_in:].sum()) - n_out * (n_out + 1) / 2) / (n_in * n_out)
    accepted = (outside <= accepting_threshold(inside)).double().mean()
    return auroc, float(accepted)
