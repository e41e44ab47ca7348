"""A fixed slice of the differential fuzzer (`make fuzz` runs long campaigns): random attention
blocks on every target, both schedules, fused or not, f32 and int8, tight and loose L1
budgets; each must match its reference or be refused with one line."""

from hypothesis import HealthCheck, given, settings

from tinyattn.fuzz.differential import cases, check


@settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(case=cases())
def test_random_attention_blocks_match_or_are_refused_in_one_line(case):
    outcome = check(case)
    assert not outcome.failed, f"{outcome.kind}: {case}\n{outcome.detail}"
