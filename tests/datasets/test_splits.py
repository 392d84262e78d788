import pytest

from datasets.splits import Row, assign_splits, cap_per_class, parse_ratio


def rows(n_groups=60, per_group=3):
    out, i = [], 0
    for g in range(n_groups):
        for k in range(per_group):
            i += 1
            out.append(Row(i, f"{i:064x}", ["PASS", "OPEN", "SHORT"][k], f"g{g}"))
    return out


def test_ratio_parsing():
    assert parse_ratio("8:1:1") == pytest.approx((0.8, 0.1, 0.1))
    for bad in ("8:1", "a:b:c", "0:0:0", "-1:1:1"):
        with pytest.raises(ValueError, match="8:1:1"):
            parse_ratio(bad)


def test_splits_keep_groups_together_follow_the_ratio_and_repeat_with_the_seed():
    data = rows()
    splits = assign_splits(data, (0.8, 0.1, 0.1), seed=7)
    by_group: dict[str, set[str]] = {}
    for row in data:
        by_group.setdefault(row.group, set()).add(splits[row.image_id])
    assert all(len(s) == 1 for s in by_group.values()), "a group was split"
    counts = {s: sum(1 for v in splits.values() if v == s) for s in ("train", "valid", "test")}
    assert counts == {"train": 144, "valid": 18, "test": 18}
    assert assign_splits(data, (0.8, 0.1, 0.1), seed=7) == splits
    assert assign_splits(data, (0.8, 0.1, 0.1), seed=8) != splits


def test_a_zero_share_split_gets_nothing():
    splits = assign_splits(rows(10), (1, 0, 1), seed=0)
    assert set(splits.values()) == {"train", "test"}


def test_cap_per_class_is_seeded_and_leaves_small_classes_whole():
    data = [*rows(60), Row(1000, "x" * 64, "RARE", "z")]
    capped = cap_per_class(data, 25, seed=1)
    labels = [r.label for r in capped]
    assert {lab: labels.count(lab) for lab in set(labels)} == {"PASS": 25, "OPEN": 25, "SHORT": 25, "RARE": 1}
    assert cap_per_class(data, 25, seed=1) == capped and cap_per_class(data, 25, seed=2) != capped


def test_splits_are_stratified_by_class_when_groups_hold_one_class():
    data = [
        Row(i, f"{i:064x}", label, f"{label}-{i // 2}") for i, label in enumerate(["A"] * 200 + ["B"] * 40 + ["C"] * 20)
    ]
    splits = assign_splits(data, (0.8, 0.1, 0.1), seed=0)
    for label, n in (("A", 200), ("B", 40), ("C", 20)):
        valid = sum(1 for r in data if r.label == label and splits[r.image_id] == "valid")
        assert abs(valid - n * 0.1) <= 2, (label, valid)
