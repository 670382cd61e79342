"""The committed split is what the split code makes from the data, and it keeps duplicates together."""

from collections import Counter, defaultdict

from busapp.training.data import SITES, SPLIT_FILE, conflicting_groups, read_all, read_split
from busapp.training.split import make_site_split, make_split


def test_committed_split_is_reproducible(data_root):
    records = read_all(data_root, SITES)
    assert make_site_split(records) == read_split(SPLIT_FILE)
    # busnet 1.x's two sites keep exactly the split they had before BUS-UCLM was added
    old = read_all(data_root)
    assert {k: v for k, v in read_split(SPLIT_FILE).items() if not k.startswith("bus_uclm/")} == make_split(old)


def test_patients_never_cross_splits_and_every_split_has_each_label(data_root):
    records = [r for r in read_all(data_root, SITES) if r.dataset == "bus_uclm"]
    assignment = read_split(SPLIT_FILE)
    by_patient = defaultdict(set)
    for r in records:
        by_patient[r.group].add(assignment[r.key])
    assert all(len(s) == 1 for s in by_patient.values())
    assert {assignment[r.key] for r in records} == {"train", "val", "test"}  # nothing excluded
    for s in ("test", "val"):
        labels = Counter(r.label for r in records if assignment[r.key] == s)
        assert set(labels) == {"normal", "benign", "malignant"}, (s, labels)
        assert 0.10 < sum(labels.values()) / len(records) < 0.22, (s, labels)


def test_duplicate_groups_never_cross_splits(data_root):
    assignment = read_split(SPLIT_FILE)
    by_group = defaultdict(set)
    for r in read_all(data_root):
        by_group[r.group].add(assignment[r.key])
    assert all(len(s) == 1 for s in by_group.values())


def test_label_conflicts_excluded_and_strata_balanced(data_root):
    records = read_all(data_root)
    assignment = read_split(SPLIT_FILE)
    noisy = conflicting_groups(records)
    assert noisy, "BUSI has known cross-class duplicate groups"
    assert {assignment[r.key] for r in records if r.group in noisy} == {"excluded"}
    counts = Counter((r.dataset, r.label, assignment[r.key]) for r in records if r.group not in noisy)
    for dataset, label in {(r.dataset, r.label) for r in records}:
        total = sum(counts[(dataset, label, s)] for s in ("train", "val", "test"))
        if total >= 40:
            for s, share in (("test", 0.15), ("val", 0.15)):
                assert abs(counts[(dataset, label, s)] / total - share) < 0.04, (dataset, label, s)


def test_cross_validation_folds_keep_groups_whole_and_strata_even(data_root):
    from busapp.training.data import records_for
    from busapp.training.split import make_folds

    dev = records_for("train", data_root) + records_for("val", data_root)
    folds = make_folds(dev, 4)
    assert folds == make_folds(list(reversed(dev)), 4)  # deterministic, whatever the record order
    assert set(folds) == {r.key for r in dev} and set(folds.values()) == {0, 1, 2, 3}
    by_group = defaultdict(set)
    for r in dev:
        by_group[r.group].add(folds[r.key])
    assert all(len(s) == 1 for s in by_group.values())
    counts = Counter((r.dataset, r.label, folds[r.key]) for r in dev)
    for dataset, label in {(r.dataset, r.label) for r in dev}:
        per_fold = [counts[(dataset, label, k)] for k in range(4)]
        largest_group = max(Counter(r.group for r in dev if (r.dataset, r.label) == (dataset, label)).values())
        assert max(per_fold) - min(per_fold) <= largest_group, (dataset, label, per_fold)
    assert make_folds(dev, 4, seed=1) != folds  # the seed matters
