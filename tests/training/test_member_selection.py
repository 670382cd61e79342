"""Choosing the ensemble members on validation (pure numpy: no TensorFlow needed)."""

import numpy as np

from busapp.training.members import choose_members


def _outputs(y: np.ndarray, masks: np.ndarray, correct: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Class logits that are right where ``correct`` is true; mask logits +4 inside ``masks``."""
    logits = rng.normal(0, 0.1, (len(y), 3))
    wrong = (y + 1) % 3
    logits[np.arange(len(y)), np.where(correct, y, wrong)] += 3.0
    return np.where(masks > 0.5, 4.0, -4.0), logits


def test_the_pair_wins_only_when_it_scores_better_on_validation():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 10)
    masks = np.zeros((30, 8, 8, 1), np.float32)
    masks[10:, 2:6, 2:6] = 1
    # a and b are each right on 20 of 30 images, on different ones; c is right on 24.
    a = _outputs(y, masks, np.arange(30) % 3 != 0, rng)
    b = _outputs(y, masks, np.arange(30) % 3 != 1, rng)
    c = _outputs(y, masks, np.arange(30) % 5 != 0, rng)

    chosen, table = choose_members([a, b, c], ["a", "b", "c"], masks, y, max_members=1)
    assert chosen == [2] and [r["members"] for r in table] == [["a"], ["b"], ["c"]]

    chosen, table = choose_members([a, b, c], ["a", "b", "c"], masks, y, max_members=2)
    assert len(table) == 6  # 3 singles, 3 pairs
    best = max(table, key=lambda r: r["val_score"])
    assert [["a", "b", "c"][i] for i in chosen] == best["members"]
    assert all(r["val_dice"] == 1.0 for r in table)  # masks are perfect everywhere

    # Identical candidates: the tie goes to a single member.
    chosen, _ = choose_members([c, c], ["c", "c2"], masks, y, max_members=2)
    assert chosen == [0]
