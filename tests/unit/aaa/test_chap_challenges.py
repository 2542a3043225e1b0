"""The CHAP challenge window: reuse per NAS, retransmits apart, bounded in time and size."""

from __future__ import annotations

from radius_contracts.aaa.chap_challenges import ChallengeWindow

CHALLENGE = b"challenge-octets"
AUTH_A = b"A" * 16
AUTH_B = b"B" * 16


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_second_request_with_the_same_challenge_is_a_reuse() -> None:
    window = ChallengeWindow(60)

    assert not window.reused(1, CHALLENGE, 10, AUTH_A)
    assert window.reused(1, CHALLENGE, 11, AUTH_A)  # new Identifier, same authenticator
    assert window.reused(1, CHALLENGE, 10, AUTH_B)  # new authenticator, same Identifier


def test_a_retransmit_of_the_same_request_is_no_reuse() -> None:
    window = ChallengeWindow(60)

    assert not window.reused(1, CHALLENGE, 10, AUTH_A)
    assert not window.reused(1, CHALLENGE, 10, AUTH_A)


def test_challenges_are_per_nas() -> None:
    window = ChallengeWindow(60)

    assert not window.reused(1, CHALLENGE, 10, AUTH_A)
    assert not window.reused(2, CHALLENGE, 10, AUTH_B)
    assert not window.reused(1, CHALLENGE + b"!", 10, AUTH_B)
    assert not window.reused(256, CHALLENGE, 10, AUTH_B)  # ids are not cut to one octet


def test_a_challenge_is_held_at_least_one_window_and_at_most_two() -> None:
    clock = Clock()
    window = ChallengeWindow(60, clock=clock)
    assert not window.reused(1, CHALLENGE, 10, AUTH_A)
    clock.now += 59
    assert window.reused(1, CHALLENGE, 11, AUTH_B)
    clock.now += 2  # 61 s: rotated once, still in the previous generation
    assert window.reused(1, CHALLENGE, 11, AUTH_B)
    clock.now += 60  # 121 s: rotated again, gone
    assert not window.reused(1, CHALLENGE, 11, AUTH_B)


def test_after_an_idle_window_both_generations_are_dropped() -> None:
    clock = Clock()
    window = ChallengeWindow(10, clock=clock)
    for n in range(5):
        window.reused(1, bytes([n]) * 16, 1, AUTH_A)
    clock.now += 25
    window.reused(1, b"fresh-challenge!", 1, AUTH_A)

    assert len(window) == 1


def test_memory_stays_within_two_generations_at_any_rate() -> None:
    window = ChallengeWindow(3600, max_entries=100)
    for n in range(1000):
        assert not window.reused(1, n.to_bytes(16, "big"), 1, AUTH_A)
        assert len(window) <= 200
    # The latest challenges are still known.
    assert window.reused(1, (999).to_bytes(16, "big"), 2, AUTH_A)


def test_window_zero_checks_nothing_and_holds_nothing() -> None:
    window = ChallengeWindow(0)

    assert not window.reused(1, CHALLENGE, 10, AUTH_A)
    assert not window.reused(1, CHALLENGE, 11, AUTH_B)
    assert len(window) == 0
