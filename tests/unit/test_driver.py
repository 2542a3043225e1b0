"""IN lists of few lengths: every batch size maps to one of a handful of statements."""

from radius_contracts.store.driver import padded


def test_padded_lists_match_the_same_values_in_few_lengths() -> None:
    lengths = set()
    for size in range(1, 1025):
        values = list(range(size))
        out = padded(values)
        assert out[:size] == values and set(out) == set(values)
        lengths.add(len(out))
    assert lengths == {8, 16, 32, 64, 128, 256, 512, 1024}
    assert padded([]) == []
