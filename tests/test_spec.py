import pytest

from bayesarena.errors import BayesArenaError, SpecError
from bayesarena.spec import available_specs, load_spec, parse_spec


def test_shipped_specs_load():
    names = available_specs()
    assert {"bt", "bt-davidson", "bt-ties-half"} <= set(names)
    for name in names:
        spec = load_spec(name)
        assert spec.name == name
        assert set(spec.priors) == set(spec.required_priors)


def test_load_by_path_and_bad_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(load_spec("bt").to_toml().replace('name = "bt"', 'name = "mine"'))
    assert load_spec(path).name == "mine"
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


def test_to_toml_roundtrip():
    import tomllib

    spec = load_spec("bt-davidson")
    again = parse_spec(tomllib.loads(spec.to_toml()))
    assert again.likelihood == spec.likelihood
    assert again.priors == spec.priors
    assert again.sampler == spec.sampler


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"name": "x", "likelyhood": {}}, "likelyhood"),
        ({"name": "x", "likelihood": {"ties": "rao"}}, "likelihood.ties"),
        ({"name": "x", "likelihood": {"ties": "drop", "both_bad": "modelled"}}, "both_bad"),
        ({"name": "x", "likelihood": {"ties": "half", "both_bad": "modelled"}}, "both_bad"),
        ({"name": "x", "priors": {"sigma": {"family": "gamma", "scale": 1}}}, "sigma.family"),
        ({"name": "x", "priors": {"sigma": {"family": "half_normal", "scale": -1}}}, "scale"),
        ({"name": "x", "priors": {"sigma": {"family": "half_normal"}}}, "'scale'"),
        ({"name": "x", "priors": {"nu": {"family": "normal", "loc": 0, "scale": 1}}}, "nu"),
        ({"name": "x", "sampler": {"chains": "four"}}, "sampler.chains"),
        ({"name": "x", "sampler": {"target_accept": 1.5}}, "target_accept"),
        ({"name": "x", "sampler": {"chain_method": "mpi"}}, "chain_method"),
        ({"name": "x", "sampler": {"max_tree_depth": "deep"}}, 'int or "auto"'),
        ({"name": "x", "sampler": {"max_tree_depth": 0}}, "max_tree_depth"),
        ({"description": "no name"}, "'name'"),
    ],
)
def test_bad_specs_name_the_key(raw, fragment):
    with pytest.raises(SpecError, match=None) as info:
        parse_spec(raw)
    assert fragment in str(info.value)


def test_unknown_spec_name_lists_shipped():
    with pytest.raises(SpecError, match="bt-davidson"):
        load_spec("no-such-model")


def test_with_sampler_overrides_and_validates():
    spec = load_spec("bt").with_sampler(chains=2, draws=None)
    assert spec.sampler.chains == 2
    assert spec.sampler.draws == load_spec("bt").sampler.draws
    with pytest.raises(SpecError):
        load_spec("bt").with_sampler(chains=0)


def test_metric_and_warmup_auto_follow_the_hierarchy_and_kernel():
    """``metric = "auto"`` and ``warmup = "auto"`` (models/arena.toml) parse and survive the
    TOML round trip; the Laplace metric is chosen for hierarchical specs that split HMC samples
    from their Laplace approximation, with the shorter warmup, and refused by name elsewhere;
    an unknown metric is refused."""
    import tomllib

    from bayesarena.fit import AUTO_WARMUP, LARGE_POSTERIOR_FROM, resolve_metric, resolve_warmup

    spec = load_spec("arena")
    assert (spec.sampler.metric, spec.sampler.warmup) == ("auto", "auto")
    assert parse_spec(tomllib.loads(spec.to_toml())).sampler == spec.sampler
    large, small = LARGE_POSTERIOR_FROM, LARGE_POSTERIOR_FROM - 1
    assert resolve_metric(spec, hierarchical=True, n_parameters=large) == "laplace"
    assert resolve_metric(spec, hierarchical=True, n_parameters=small) == "diagonal"  # NUTS
    assert resolve_metric(spec, hierarchical=False, n_parameters=large) == "diagonal"
    nuts = spec.with_sampler(kernel="nuts")
    assert resolve_metric(nuts, hierarchical=True, n_parameters=large) == "diagonal"
    assert resolve_metric(spec.with_sampler(metric="diagonal"), True, large) == "diagonal"
    with pytest.raises(BayesArenaError, match="kernel 'nuts'"):
        resolve_metric(nuts.with_sampler(metric="laplace"), True, large)
    with pytest.raises(BayesArenaError, match="a plain spec"):
        resolve_metric(load_spec("bt").with_sampler(metric="laplace", kernel="split_hmc"),
                       False, large)
    assert resolve_warmup("auto", "laplace") == AUTO_WARMUP["laplace"] < AUTO_WARMUP["diagonal"]
    assert resolve_warmup("auto", "diagonal") == AUTO_WARMUP["diagonal"]
    assert resolve_warmup(37, "laplace") == 37
    with pytest.raises(SpecError, match="metric"):
        spec.with_sampler(metric="dense")
    with pytest.raises(SpecError, match="warmup"):
        spec.with_sampler(warmup="long")


def test_tree_depth_auto_caps_large_posteriors_only():
    """``max_tree_depth = "auto"`` (models/arena.toml) parses, survives the TOML round trip, and
    resolves to 4 (15 leapfrog steps) from LARGE_POSTERIOR_FROM parameters, 10 below or when the
    count is unknown; a number is used as given."""
    import tomllib

    from bayesarena.fit import LARGE_POSTERIOR_FROM, resolve_max_tree_depth

    spec = load_spec("arena")
    assert spec.sampler.max_tree_depth == "auto"
    assert parse_spec(tomllib.loads(spec.to_toml())).sampler == spec.sampler
    assert resolve_max_tree_depth("auto", LARGE_POSTERIOR_FROM) == 4
    assert resolve_max_tree_depth("auto", LARGE_POSTERIOR_FROM - 1) == 10
    assert resolve_max_tree_depth("auto", None) == 10
    assert resolve_max_tree_depth(6, 10**6) == 6
    assert spec.with_sampler(max_tree_depth=5).sampler.max_tree_depth == 5
    with pytest.raises(SpecError, match="max_tree_depth"):
        spec.with_sampler(max_tree_depth="deep")
