"""Matching of detections to ground truth, as the KITTI devkit's ``computeStatistics`` does it (numba).

Inputs are those of a whole dataset, frames concatenated: ``gt_offsets`` / ``dt_offsets`` ``[F + 1]``
delimit each frame's rows, and the overlaps of frame ``f`` are the row-major ``[N_dt_f, N_gt_f]`` block
at ``block_offsets[f]`` of a flat buffer (see :mod:`ada3d.evaluation.box_overlaps`).

Marks per object, for one class and difficulty (the devkit's ``cleanData``):

* ``ignored_gt``: 0 counts (TP or FN), 1 may absorb a detection but counts nothing (a neighbouring class, or
  too small / occluded / truncated for the difficulty), -1 plays no part (another class, DontCare);
* ``ignored_dt``: 0 counts (TP or FP), 1 below the minimum height (never a TP or FP; may absorb a ground
  truth), -1 another class;
* ``is_dontcare``: ground-truth rows that are DontCare regions; a detection that is neither TP nor
  absorbed and whose intersection over its own image area with such a region exceeds the overlap threshold
  is not a false positive (2D boxes only: DontCare labels carry no 3D box).

A frame is evaluated twice. Without thresholds (``compute_fp`` off) every valid ground truth takes the
highest-scoring unassigned detection above the overlap threshold: the TP scores of this pass give the
score thresholds. Then, for each threshold, detections scoring below it are dropped and each ground truth
takes the unassigned detection of greatest overlap, preferring counted detections over ignored ones, to
count TP, FP, FN and the orientation similarity ``(1 + cos(delta alpha)) / 2`` summed over TPs.
"""

from __future__ import annotations

import numba
import numpy as np

NO_DETECTION = -1e7


@numba.njit(cache=True)
def _frame_statistics(
    overlaps, dontcare_overlaps, gts, dts, dontcares, ignored_gt, ignored_dt, scores, gt_alpha, dt_alpha,
    min_overlap, thresh, compute_fp, compute_aos, assigned, tp_scores,
):
    """One frame: ``(tp, fp, fn, similarity, n_tp_scores)``; TP scores go to ``tp_scores``.

    ``gts`` / ``dts`` / ``dontcares`` are the frame-local indices of the ground truths and detections that
    take part (marks other than -1) and of the DontCare regions; ``assigned`` is a scratch buffer.
    """
    for j in dts:
        assigned[j] = False
    tp, fp, fn, n_tp = 0, 0, 0, 0
    similarity = 0.0
    for i in gts:
        det = -1
        valid = NO_DETECTION
        max_overlap = 0.0
        assigned_ignored = False
        for j in dts:
            if assigned[j] or (compute_fp and scores[j] < thresh):
                continue
            overlap = overlaps[j, i]
            if overlap <= min_overlap:
                continue
            if not compute_fp:
                if scores[j] > valid:
                    det, valid = j, scores[j]
            elif ignored_dt[j] == 0 and (overlap > max_overlap or assigned_ignored):
                det, valid, max_overlap, assigned_ignored = j, 1.0, overlap, False
            elif ignored_dt[j] == 1 and valid == NO_DETECTION:
                det, valid, assigned_ignored = j, 1.0, True
        if valid == NO_DETECTION:
            if ignored_gt[i] == 0:
                fn += 1
        elif ignored_gt[i] == 1 or ignored_dt[det] == 1:
            assigned[det] = True
        else:
            tp += 1
            tp_scores[n_tp] = scores[det]
            n_tp += 1
            if compute_aos:
                similarity += (1.0 + np.cos(gt_alpha[i] - dt_alpha[det])) / 2.0
            assigned[det] = True
    if compute_fp:
        for j in dts:
            if assigned[j] or ignored_dt[j] == 1 or scores[j] < thresh:
                continue
            in_dontcare = False
            for d in dontcares:
                if dontcare_overlaps[j, d] > min_overlap:
                    in_dontcare = True
                    break
            if not in_dontcare:
                fp += 1
        if compute_aos and tp == 0 and fp == 0:
            similarity = -1.0
    return tp, fp, fn, similarity, n_tp


@numba.njit(cache=True)
def _frame_view(frame, flat, block_offsets, n_dt, n_gt):
    return flat[block_offsets[frame]:block_offsets[frame + 1]].reshape((n_dt, n_gt))


@numba.njit(cache=True)
def _members(ignored_gt, ignored_dt, is_dontcare, use_dontcare):
    gts = np.nonzero(ignored_gt != -1)[0]
    dts = np.nonzero(ignored_dt != -1)[0]
    dontcares = np.nonzero(is_dontcare & use_dontcare)[0]
    return gts, dts, dontcares


@numba.njit(cache=True)
def collect_tp_scores(
    overlaps, dontcare_overlaps, block_offsets, gt_offsets, dt_offsets, ignored_gt, ignored_dt, is_dontcare,
    use_dontcare, scores, min_overlap,
):
    """Scores of the true positives of the threshold-free pass over all frames, ``[T]``."""
    out = np.empty(len(ignored_gt))
    count = 0
    assigned = np.zeros(len(scores), dtype=np.bool_)
    empty_alpha = np.zeros(0)
    for frame in range(len(gt_offsets) - 1):
        g0, g1, d0, d1 = gt_offsets[frame], gt_offsets[frame + 1], dt_offsets[frame], dt_offsets[frame + 1]
        if g1 == g0 or d1 == d0:
            continue
        gts, dts, dontcares = _members(ignored_gt[g0:g1], ignored_dt[d0:d1], is_dontcare[g0:g1], use_dontcare)
        _, _, _, _, n_tp = _frame_statistics(
            _frame_view(frame, overlaps, block_offsets, d1 - d0, g1 - g0),
            _frame_view(frame, dontcare_overlaps, block_offsets, d1 - d0, g1 - g0),
            gts, dts, dontcares, ignored_gt[g0:g1], ignored_dt[d0:d1], scores[d0:d1], empty_alpha, empty_alpha,
            min_overlap, 0.0, False, False, assigned, out[count:],
        )
        count += n_tp
    return out[:count]


@numba.njit(cache=True)
def accumulate_counts(
    overlaps, dontcare_overlaps, block_offsets, gt_offsets, dt_offsets, ignored_gt, ignored_dt, is_dontcare,
    use_dontcare, scores, gt_alpha, dt_alpha, min_overlap, thresholds, compute_aos,
):
    """``[T, 4]`` (TP, FP, FN, summed orientation similarity) over all frames for each score threshold."""
    counts = np.zeros((len(thresholds), 4))
    assigned = np.zeros(len(scores), dtype=np.bool_)
    tp_scores = np.empty(len(ignored_gt))
    for frame in range(len(gt_offsets) - 1):
        g0, g1, d0, d1 = gt_offsets[frame], gt_offsets[frame + 1], dt_offsets[frame], dt_offsets[frame + 1]
        gts, dts, dontcares = _members(ignored_gt[g0:g1], ignored_dt[d0:d1], is_dontcare[g0:g1], use_dontcare)
        if len(gts) == 0 and len(dts) == 0:
            continue
        frame_overlaps = _frame_view(frame, overlaps, block_offsets, d1 - d0, g1 - g0)
        frame_dontcare = _frame_view(frame, dontcare_overlaps, block_offsets, d1 - d0, g1 - g0)
        for t in range(len(thresholds)):
            tp, fp, fn, similarity, _ = _frame_statistics(
                frame_overlaps, frame_dontcare, gts, dts, dontcares, ignored_gt[g0:g1], ignored_dt[d0:d1],
                scores[d0:d1], gt_alpha[g0:g1], dt_alpha[d0:d1], min_overlap, thresholds[t], True, compute_aos,
                assigned, tp_scores,
            )
            counts[t, 0] += tp
            counts[t, 1] += fp
            counts[t, 2] += fn
            if similarity != -1.0:
                counts[t, 3] += similarity
    return counts


@numba.njit(cache=True)
def score_thresholds(tp_scores, num_gt, num_sample_pts=41):
    """Scores at which recall is closest to ``0, 1/40, ..., 1`` (the devkit's ``getThresholds``).

    ``tp_scores`` are the TP scores of the threshold-free pass; ``num_gt`` the count of valid ground truths.
    """
    scores = np.sort(tp_scores)[::-1]
    out = np.empty(len(scores))
    count = 0
    current_recall = 0.0
    for i in range(len(scores)):
        left_recall = (i + 1) / num_gt
        last = i == len(scores) - 1
        right_recall = left_recall if last else (i + 2) / num_gt
        if not last and (right_recall - current_recall) < (current_recall - left_recall):
            continue
        out[count] = scores[i]
        count += 1
        current_recall += 1.0 / (num_sample_pts - 1.0)
    return out[:count]
