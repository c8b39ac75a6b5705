"""Instance segmentation quality: Dice, aggregated Jaccard index (AJI) and panoptic quality (PQ).

All three from one sparse overlap table of (true id, predicted id) pixel counts, so nothing is
O(N_true × N_pred) in memory. Definitions: AJI as in Kumar et al. (IEEE TMI 2017, the MoNuSeg
paper); PQ = SQ × DQ with matches at IoU > 0.5 (Kirillov et al., CVPR 2019), the variant
HoVer-Net reports.
"""

from __future__ import annotations

import numpy as np

from hmgdm_core.entities.table import relabel_sequential
from hmgdm_core.errors import InputError

__all__ = ["instance_scores"]


def instance_scores(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Compare a predicted instance label image with the ground truth.

    Parameters
    ----------
    true, pred : ndarray, shape (rows, cols), integer
        Instance labels, 0 = background.

    Returns
    -------
    dict
        ``dice`` (binary foreground Dice), ``aji``, ``pq``, ``sq``, ``dq`` (all 0–1; 1 is
        perfect), ``n_true`` and ``n_pred``.
    """
    true, pred = np.asarray(true), np.asarray(pred)
    if true.shape != pred.shape or true.ndim != 2:
        raise InputError(f"Label images must be 2-D and equal in shape, got {true.shape} and {pred.shape}.")
    true, nt = relabel_sequential(true)
    pred, npred = relabel_sequential(pred)
    fg_t, fg_p = true > 0, pred > 0
    denom = fg_t.sum() + fg_p.sum()
    dice = float(2 * (fg_t & fg_p).sum() / denom) if denom else 1.0
    area_t = np.bincount(true.ravel(), minlength=nt + 1).astype(np.float64)
    area_p = np.bincount(pred.ravel(), minlength=npred + 1).astype(np.float64)
    both = fg_t & fg_p
    key, inter = np.unique(true[both].astype(np.int64) * (npred + 1) + pred[both], return_counts=True)
    ti, pi = key // (npred + 1), key % (npred + 1)
    union = area_t[ti] + area_p[pi] - inter
    iou = inter / union
    # PQ: IoU > 0.5 matches are unique by construction.
    matched = iou > 0.5
    tp = int(matched.sum())
    fp, fn = npred - tp, nt - tp
    sq = float(iou[matched].mean()) if tp else 0.0
    dq = tp / (tp + 0.5 * fp + 0.5 * fn) if (tp + fp + fn) else 1.0
    # AJI: each true nucleus takes the prediction of highest IoU; unused predictions add to the union.
    inter_sum = union_sum = 0.0
    used = np.zeros(npred + 1, dtype=bool)
    if len(ti):
        order = np.lexsort((-iou, ti))
        first = np.unique(ti[order], return_index=True)[1]
        best = order[first]
        inter_sum = float(inter[best].sum())
        union_sum = float(union[best].sum())
        used[pi[best]] = True
        unmatched_true = np.setdiff1d(np.arange(1, nt + 1), ti[best])
    else:
        unmatched_true = np.arange(1, nt + 1)
    union_sum += float(area_t[unmatched_true].sum()) + float(area_p[1:][~used[1:]].sum())
    aji = inter_sum / union_sum if union_sum else 1.0
    return {"dice": dice, "aji": aji, "pq": sq * dq, "sq": sq, "dq": dq, "n_true": nt, "n_pred": npred}
