"""Search spaces: every domain, splitting, names and ids, bad specs (with paths), fuzzing."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shadho import spaces as S
from shadho.errors import ShadhoError, SpecError


def _draw(spec, n=400, seed=0):
    (space,) = S.split(spec)
    rng = np.random.default_rng(seed)
    return space, [space.params(space.sample(rng)) for _ in range(n)]


@pytest.mark.parametrize("dom,lo,hi", [
    (S.uniform(-2, 3), -2, 3),
    (S.ln_uniform(-1, 2), math.e ** -1, math.e ** 2),
    (S.log10_uniform(-3, 3), 1e-3, 1e3),
    (S.log2_uniform(1, 4), 2.0, 16.0),
])
def test_continuous_domains_stay_inside_and_are_plain_floats(dom, lo, hi):
    _, draws = _draw({"x": dom})
    xs = [d["x"] for d in draws]
    assert all(type(x) is float for x in xs)
    assert all(lo <= x <= hi for x in xs)
    # log domains are log-uniform: the median sits near the geometric middle
    if isinstance(dom, S._Continuous) and dom.base is not None:
        mid = math.sqrt(lo * hi)
        assert 0.3 * mid < float(np.median(xs)) < 3 * mid
        assert min(xs) < lo * 10 ** 0.5 * (hi / lo) ** 0.1


def test_log10_uniform_spans_decades():
    _, draws = _draw({"x": S.log10_uniform(-3, 3)}, n=2000)
    xs = np.array([d["x"] for d in draws])
    counts = np.histogram(np.log10(xs), bins=6, range=(-3, 3))[0]
    assert counts.min() > 200  # roughly equal mass per decade


@pytest.mark.parametrize("dom,base", [(S.normal(2, 0.5), None), (S.ln_normal(0, 1), math.e),
                                      (S.log10_normal(-2, 1), 10.0), (S.log2_normal(3, 1), 2.0)])
def test_normal_domains(dom, base):
    _, draws = _draw({"x": dom}, n=2000)
    xs = np.array([d["x"] for d in draws])
    assert all(type(x) is float for x in xs.tolist())
    w = xs if base is None else np.log(xs) / np.log(base)
    assert abs(w.mean() - dom.mu) < 0.1 and abs(w.std() - dom.sigma) < 0.1


def test_randint_with_step_and_log_randints():
    _, draws = _draw({"a": S.randint(3, 12, step=3), "b": S.log2_randint(0, 5),
                      "c": S.log10_randint(-1, 2), "d": S.ln_randint(0, 2)})
    assert {d["a"] for d in draws} == {3, 6, 9}
    assert all(type(d["a"]) is int for d in draws)
    assert {d["b"] for d in draws} == {1, 2, 4, 8, 16}
    assert all(type(d["b"]) is int for d in draws)
    assert {d["c"] for d in draws} == {0.1, 1, 10}
    assert {round(d["d"], 6) for d in draws} == {1.0, round(math.e, 6)}


def test_choice_mixed_types_and_lists_are_choices():
    _, draws = _draw({"c": S.choice([1, "two", None, 3.5, [1, 2]]), "l": ["a", "b"]})
    assert {json.dumps(d["c"]) for d in draws} == {"1", '"two"', "null", "3.5", "[1, 2]"}
    assert {d["l"] for d in draws} == {"a", "b"}


def test_numpy_values_come_out_plain():
    _, draws = _draw({"c": S.choice([np.int64(3), np.float32(1.5)])})
    assert {type(d["c"]) for d in draws} <= {int, float}


def test_constants_pass_through():
    (space,) = S.split({"a": 1, "b": "x", "c": None, "d": True, "e": {"f": 2.5}})
    assert space.dim == 0
    assert space.params([]) == {"a": 1, "b": "x", "c": None, "d": True, "e": {"f": 2.5}}


SVM = {
    "svm": S.scope(
        exclusive=True,
        linear={"kernel": "linear", "C": S.log10_uniform(-3, 3)},
        rbf={"kernel": "rbf", "C": S.log10_uniform(-3, 3), "gamma": S.log10_uniform(-5, 0)},
        poly={"kernel": "poly", "C": S.log10_uniform(-3, 3), "degree": S.randint(2, 6)},
    )
}


def test_exclusive_split_names_ids_and_nested_params():
    sp = S.split(SVM)
    assert [s.name for s in sp] == ["svm/linear", "svm/rbf", "svm/poly"]
    assert len({s.id for s in sp}) == 3
    assert [s.id for s in S.split(SVM)] == [s.id for s in sp]  # stable
    rbf = sp[1]
    p = rbf.params(rbf.sample(np.random.default_rng(0)))
    assert list(p) == ["svm"] and list(p["svm"]) == ["rbf"]
    assert p["svm"]["rbf"]["kernel"] == "rbf" and set(p["svm"]["rbf"]) == {"kernel", "C", "gamma"}


def test_dict_flags_top_level_exclusive_matches_issue_example():
    spec = {"exclusive": True, "rbf": {"kernel": "rbf", "C": S.uniform(1, 5), "gamma": S.uniform(0, 1)},
            "linear": {"kernel": "linear", "C": S.uniform(1, 5)}}
    sp = S.split(spec)
    assert [s.name for s in sp] == ["rbf", "linear"]
    p = sp[0].params(sp[0].sample(np.random.default_rng(1)))
    assert set(p) == {"rbf"} and p["rbf"]["kernel"] == "rbf"


def test_optional_adds_an_empty_space_and_product_of_splits():
    spec = {"model": S.scope(exclusive=True, a={"x": S.uniform(0, 1)}, b={"y": S.uniform(0, 1)}),
            "reg": S.scope(optional=True, l2=S.uniform(0, 1)),
            "grid": S.exhaustive([1, 2])}
    sp = S.split(spec)
    assert len(sp) == 2 * 2 * 2
    names = [s.name for s in sp]
    assert "model/a/grid=1" in names and "model/b/reg:off/grid=2" in names
    off = next(s for s in sp if "reg:off" in s.name)
    assert "reg" not in off.params(off.sample(np.random.default_rng(0)))
    grid2 = next(s for s in sp if s.name.endswith("grid=2"))
    assert grid2.params(grid2.sample(np.random.default_rng(0)))["grid"] == 2


def test_root_optional_and_default_name():
    sp = S.split({"optional": True, "x": S.uniform(0, 1)})
    assert len(sp) == 2 and sp[0].name == "default"
    assert sp[1].params([]) == {}


def test_encode_inverts_params():
    for space in S.split(SVM):
        p = space.params(space.sample(np.random.default_rng(3)))
        q = space.params(space.encode(p))
        assert q.keys() == p.keys()
        assert np.allclose(space.encode(q), space.encode(p), rtol=1e-9, atol=1e-12)


def test_values_never_outside_domains_for_extreme_working_values():
    spec = {"u": S.uniform(0, 1), "l": S.log10_uniform(-2, 2), "i": S.randint(0, 10, 2),
            "c": S.choice(["a", "b"]), "n": S.log2_normal(0, 1)}
    (space,) = S.split(spec)
    for x in ([-1e9] * 5, [1e9] * 5, [np.nan if False else 0.0] * 5):
        p = space.params(x)
        assert 0 <= p["u"] <= 1 and 0.01 <= p["l"] <= 100 and p["i"] in range(0, 10, 2)
        assert p["c"] in ("a", "b") and math.isfinite(p["n"])


BAD_SPECS = [
    ({"svm": {"rbf": {"gamma": S.log10_uniform(3, -3)}}}, "svm.rbf.gamma: log10_uniform needs lo < hi, got (3, -3)"),
    ({"x": S.uniform(1, 1)}, "x: uniform needs lo < hi"),
    ({"x": S.uniform("a", 2)}, "x: uniform needs numbers"),
    ({"x": S.uniform(0, float("inf"))}, "x: uniform needs finite bounds"),
    ({"x": S.normal(0, 0)}, "x: normal needs sigma > 0"),
    ({"x": S.ln_normal(0, -1)}, "x: ln_normal needs sigma > 0"),
    ({"x": S.randint(5, 5)}, "x: randint needs lo < hi"),
    ({"x": S.randint(0, 5, 0)}, "x: randint needs step > 0"),
    ({"x": S.randint(0.5, 5)}, "x: randint needs integers"),
    ({"x": S.log2_randint(0, 2000)}, "x: log2_randint exponents overflow"),
    ({"a": {"x": S.choice([])}}, "a.x: choice needs at least one value"),
    ({"x": S.choice("abc")}, "x: choice needs a list"),
    ({"x": S.choice([object()])}, "x: choice values must be JSON-able"),
    ({"x": S.exhaustive([])}, "x: exhaustive needs at least one value"),
    ({"x": []}, "x: choice needs at least one value"),
    ({"m": {"exclusive": "yes", "a": 1}}, "m: 'exclusive' must be True or False, got 'yes'"),
    ({"m": {"optional": 1, "a": 1}}, "m: 'optional' must be True or False"),
    ({"m": {"exclusive": True}}, "m: an exclusive dict needs at least one child"),
    ({1: S.uniform(0, 1)}, "<root>: keys must be strings, got 1"),
    ({"a": {2: 1}}, "a: keys must be strings, got 2"),
    ({"a": object()}, "a: expected a dict, a domain, a list or a constant"),
    ({"a": {"b": {1, 2}}}, "a.b: expected a dict"),
    ({"a": float("nan")}, "a: constants must be finite"),
    ([S.uniform(0, 1)], "<root>: the spec must be a dict, got list"),
    ({"a": S.exhaustive(list(range(200))), "b": S.exhaustive(list(range(200)))}, "more than 10000 search spaces"),
]


@pytest.mark.parametrize("spec,msg", BAD_SPECS, ids=[m[:40] for _, m in BAD_SPECS])
def test_bad_specs_name_the_path(spec, msg):
    with pytest.raises(SpecError) as exc:
        S.split(spec)
    assert msg in str(exc.value)
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, ShadhoError)


# ---------------------------------------------------------------- fuzzing

_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.builds(S.uniform, st.floats(-5, 5) | st.text(max_size=1), st.floats(-5, 5)),
    st.builds(S.log10_uniform, st.integers(-400, 400), st.integers(-400, 400)),
    st.builds(S.normal, st.floats(-5, 5), st.floats(-1, 2)),
    st.builds(S.randint, st.integers(-5, 5) | st.floats(-5, 5), st.integers(-5, 5), st.integers(-1, 3)),
    st.builds(S.log2_randint, st.integers(-3, 3), st.integers(-3, 3)),
    st.builds(S.choice, st.lists(st.integers(0, 3) | st.text(max_size=2), max_size=3) | st.text(max_size=2)),
    st.builds(S.exhaustive, st.lists(st.integers(0, 3), max_size=3)),
    st.lists(st.integers(0, 3), max_size=3),
    st.sampled_from([object(), {1, 2}, b"x"]),
)
_key = st.one_of(st.text(min_size=1, max_size=3), st.sampled_from(["exclusive", "optional"]), st.integers(0, 2))
_flagval = st.one_of(st.booleans(), st.integers(0, 2), st.text(max_size=2))
_tree = st.recursive(
    _leaf,
    lambda children: st.dictionaries(_key, st.one_of(children, _flagval), max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.one_of(_tree, st.dictionaries(st.text(max_size=2), _tree, max_size=3)))
def test_fuzz_split_raises_only_documented_errors(spec):
    try:
        spaces = S.split(spec)
    except SpecError:
        return
    rng = np.random.default_rng(0)
    for space in spaces[:20]:
        p = space.params(space.sample(rng))
        json.dumps(p, allow_nan=False)
        assert np.allclose(space.encode(space.params(space.encode(p))), space.encode(p), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dom, want", [
    (S.uniform(-1, 2), dict(kind="float", low=-1.0, high=2.0, prior="uniform", log_base=None, support=(-1.0, 2.0))),
    (S.log10_uniform(-3, 3), dict(kind="float", low=-3.0, high=3.0, log_base=10.0, log=True)),
    (S.ln_normal(1, 2), dict(kind="float", prior="normal", mu=1.0, sigma=2.0, low=-7.0, high=9.0,
                             support=(-11.0, 13.0), log_base=pytest.approx(2.718281828))),
    (S.randint(0, 10, 3), dict(kind="int", low=0.0, high=3.0, n_values=4, integer=True, categorical=False)),
    (S.log2_randint(1, 5), dict(kind="int", low=1.0, high=4.0, n_values=4, log_base=2.0, integer=True)),
])
def test_domains_publish_their_encoding(dom, want):
    (space,) = S.split({"p": dom})
    enc = space.encodings[0]
    assert enc == dom.encoding and isinstance(enc, S.Encoding)
    for key, value in want.items():
        assert getattr(enc, key) == value, key


def test_choice_encoding_lists_the_choices_and_is_frozen():
    (space,) = S.split({"act": ["relu", {"leaky": 0.1}, None]})
    enc = space.encodings[0]
    assert (enc.kind, enc.categorical, enc.integer, enc.n_values) == ("cat", True, True, 3)
    assert enc.choices == ("relu", {"leaky": 0.1}, None)
    enc.choices[1]["leaky"] = 9  # a copy: the domain keeps its values
    assert space.params([1.0]) == {"act": {"leaky": 0.1}}
    with pytest.raises(AttributeError):
        enc.low = 5.0  # type: ignore[misc]


def test_the_split_modules_are_reachable_from_shadho_spaces():
    from shadho import domains, search_space, spec_split

    assert S.split is spec_split.split and S.SearchSpace is search_space.SearchSpace
    assert S.Domain is domains.Domain and S.MAX_SPACES == spec_split.MAX_SPACES
