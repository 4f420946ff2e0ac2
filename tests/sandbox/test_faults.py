"""The simulators' shared fault draws: armed counters first, then seeded chances, scopes, counts and reseeding."""

from __future__ import annotations

import random
import threading

from camsync.sandbox.faults import FaultDraws, truncated


def test_a_chance_of_one_always_strikes_and_zero_never() -> None:
    draws = FaultDraws(1)
    assert all(draws.strike("error", 1.0) for _ in range(20))
    assert not any(draws.strike("error", 0.0) for _ in range(20))
    assert draws.struck() == {"error": 20}


def test_a_chance_of_zero_does_not_draw_from_the_generator() -> None:
    draws, twin = FaultDraws(7), random.Random(7)
    for _ in range(5):
        draws.strike("off", 0.0)
    assert draws.rng.random() == twin.random()


def test_chances_are_seeded_the_same_seed_the_same_hits() -> None:
    def hits(seed: int) -> list[bool]:
        draws = FaultDraws(seed)
        return [draws.strike("error", 0.3) for _ in range(200)]

    first = hits(3)
    assert first == hits(3)
    assert first != hits(4)
    assert 30 < sum(first) < 90
    expected = random.Random(3)
    assert first == [expected.random() < 0.3 for _ in range(200)]  # one draw per request, in order


def test_an_armed_counter_strikes_the_next_n_whatever_the_chance() -> None:
    draws = FaultDraws(0)
    draws.arm("drop", 2)
    assert [draws.strike("drop", 0.0) for _ in range(3)] == [True, True, False]
    assert draws.armed("drop") == 0
    draws.arm("drop", 5)
    draws.arm("drop", 1)  # arming sets the counter, it does not add to it
    assert [draws.strike("drop", 0.0) for _ in range(2)] == [True, False]
    draws.arm("drop", 3)
    draws.arm("drop", 0)
    assert not draws.strike("drop", 0.0)


def test_a_scoped_counter_strikes_only_its_scope_and_goes_before_the_any_counter() -> None:
    draws = FaultDraws(0)
    draws.arm("error", 1, scope="create")
    draws.arm("error", 1)
    assert draws.strike("error", 0.0, scope="status")  # the any-scope counter
    assert not draws.strike("error", 0.0, scope="status")
    assert draws.armed("error", scope="create") == 1
    assert draws.strike("error", 0.0, scope="create")
    assert not draws.strike("error", 0.0, scope="create")


def test_a_fault_limited_to_some_scopes_never_strikes_elsewhere() -> None:
    draws = FaultDraws(0, scopes={"slow": ("status",)})
    draws.arm("slow", 3)
    assert not draws.strike("slow", 1.0, scope="create")
    assert not draws.strike("slow", 1.0)
    assert draws.armed("slow") == 3  # a refused scope does not spend the counter
    assert draws.strike("slow", 0.0, scope="status")


def test_first_returns_the_first_fault_that_strikes_in_order() -> None:
    draws = FaultDraws(0)
    assert draws.first([("a", 0.0), ("b", 0.0)]) is None
    draws.arm("b", 1)
    assert draws.first([("a", 0.0), ("b", 0.0), ("c", 1.0)]) == "b"
    assert draws.first([("a", 0.0), ("b", 0.0), ("c", 1.0)]) == "c"
    assert draws.first([("a", 1.0), ("c", 1.0)]) == "a"
    assert draws.struck() == {"b": 1, "c": 1, "a": 1}  # in the order they first struck


def test_known_faults_are_counted_from_zero_and_reset_forgets_everything() -> None:
    draws = FaultDraws(5, known=("error", "drop"))
    assert draws.struck() == {"error": 0, "drop": 0}
    draws.arm("drop", 4)
    draws.strike("drop", 0.0)
    draws.strike("error", 0.5)
    draws.reset(5)
    assert draws.struck() == {"error": 0, "drop": 0}
    assert draws.armed("drop") == 0
    assert draws.rng.random() == random.Random(5).random()


def test_reseed_keeps_the_counters() -> None:
    draws = FaultDraws(1)
    draws.arm("error", 2)
    draws.strike("error", 0.0)
    draws.reseed(9)
    assert draws.armed("error") == 1
    assert draws.struck() == {"error": 1}
    assert draws.rng.random() == random.Random(9).random()


def test_concurrent_strikes_spend_a_counter_exactly() -> None:
    draws = FaultDraws(0)
    draws.arm("error", 500)
    hits: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [draws.strike("error", 0.0) for _ in range(100)]
        with lock:
            hits.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(hits) == 500 and draws.struck() == {"error": 500}


def test_a_truncated_body_is_its_first_half_and_never_empty() -> None:
    assert truncated(b'{"a":1234}') == b'{"a":'
    assert truncated(b"x") == b"x"
    assert truncated(b"") == b""
