"""The ``bayesarena`` command line: glue over library calls, nothing more.

Errors from bad input print one line (``error: ...``) and exit with status 2; no traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from bayesarena.errors import BayesArenaError, InputError

app = typer.Typer(
    name="bayesarena",
    help="Bayesian ranking of AI models from pairwise votes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# In a log (not a terminal) rich would assume 80 columns and truncate the leaderboard.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def main() -> None:
    """Entry point of the ``bayesarena`` script."""
    app()


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``fn`` as a command whose known errors print one line and exit with 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (BayesArenaError, OSError) as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return app.command()(wrapper)


def _leaderboard_table(table, top: int | None = None) -> Table:
    prob = table.attrs.get("prob", 0.95)
    out = Table(title=f"Leaderboard ({table.attrs.get('spec')}, {table.attrs.get('method')})",
                box=box.SIMPLE_HEAD)
    for col, justify in [("Rank", "right"), ("Model", "left"), ("Rating", "right"),
                         (f"{100 * prob:g}% CrI", "right"), ("Votes", "right"),
                         ("P(1st)", "right"), (f"Rank {100 * prob:g}%", "right"),
                         ("Rank UB", "right")]:
        out.add_column(col, justify=justify, no_wrap=True)
    rows = table if top is None else table.head(top)
    for r in rows.itertuples(index=False):
        out.add_row(str(r.rank), str(r.model), f"{r.rating:.0f}",
                    f"{r.rating_lower:.0f}–{r.rating_upper:.0f}", f"{r.votes:,}",
                    f"{r.p_top1:.3f}", f"{r.rank_lower}–{r.rank_upper}", str(r.rank_ub))
    return out


def _print_fit_report(post) -> None:
    from bayesarena.diagnostics import format_diagnostics

    console.print(str(post.data_summary), highlight=False)
    for outcome, n in post.votes_not_modelled.items():
        console.print(f"not modelled by spec {post.spec.name!r}: {n:,} {outcome} votes",
                      highlight=False)
    diag = post.diagnostics
    style = "green" if diag.ok else "bold red"
    console.print(f"[{style}]{format_diagnostics(diag)}[/]", highlight=False)


def _print_components(post) -> None:
    """What the hierarchical components estimated: category scales, style coefficients,
    the position effect and flagged voters."""
    import numpy as np

    from bayesarena.scale import ELO_PER_LOGIT

    p = post.tree["posterior"]
    if post.categories:
        tau = p["category_scale"].mean(("chain", "draw")).to_series() * ELO_PER_LOGIT
        console.print("category spread tau_c (Elo): " + ", ".join(
            f"{c} {v:.0f}" for c, v in tau.items()), highlight=False)
    if "style_coef" in p.data_vars:
        coef = post.style_coefficients()
        console.print("style coefficients (logit per sd): " + ", ".join(
            f"{f} {r['mean']:+.3f} [{r['lower']:+.3f}, {r['upper']:+.3f}]"
            for f, r in coef.iterrows()), highlight=False)
    if "position" in p.data_vars:
        g = p["position"].values.ravel()
        console.print(f"shown-first advantage: {g.mean():+.3f} logit "
                      f"[{np.quantile(g, 0.025):+.3f}, {np.quantile(g, 0.975):+.3f}]",
                      highlight=False)
    if "voter_discrimination_scale" in p.data_vars:
        table = post.voter_reliability()
        flagged = table[table.flag != ""]
        console.print(f"voters with their own discrimination: {len(table):,}; flagged: "
                      f"{len(flagged):,}" + "".join(
                          f"\n  {r.voter} ({r.votes} votes): {r.flag}, kappa {r.kappa:+.2f} "
                          f"[{r.kappa_lower:+.2f}, {r.kappa_upper:+.2f}]"
                          for r in flagged.head(10).itertuples()), highlight=False)


@command
def fit(
    data: Annotated[Path, typer.Argument(help="Votes: CSV, JSON, JSONL or Parquet file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Posterior file (.nc/.zarr).")
                      ] = Path("posterior.nc"),
    model: Annotated[str, typer.Option("--model", "-m", help="Spec name or models/X.toml.")
                     ] = "bt-davidson",
    method: Annotated[str, typer.Option(help="nuts or laplace.")] = "nuts",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    chains: Annotated[int | None, typer.Option(help="Override the spec's chains.")] = None,
    warmup: Annotated[int | None, typer.Option(help="Override the spec's warmup.")] = None,
    draws: Annotated[int | None, typer.Option(help="Override the spec's draws.")] = None,
    by_category: Annotated[bool, typer.Option(help="Aggregate per category.")] = False,
    drop_invalid: Annotated[bool, typer.Option(
        help="Drop invalid rows (counted in the summary) instead of refusing the file.")] = False,
    top: Annotated[int, typer.Option(help="Leaderboard rows to print.")] = 20,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="Aggregate per-vote Parquet logs (a file, glob or directory) on Dask: "
        "'local' starts a local cluster, 'tcp://host:8786' connects to a scheduler "
        "('synchronous', 'threads', 'processes': Dask's one-machine schedulers).")] = None,
) -> None:
    """Fit a model to a vote file and save the posterior."""
    from bayesarena.aggregate import aggregate
    from bayesarena.fit import fit as fit_model
    from bayesarena.io import read_votes
    from bayesarena.spec import load_spec

    spec = load_spec(model)
    on_invalid = "drop" if drop_invalid else "raise"
    if dask is not None:
        if spec.hierarchical:
            raise InputError(f"--dask aggregates the votes into pair cells, but {spec.name!r} "
                             "reads the votes themselves (voters, tags or style): fit it "
                             "without --dask")
        from bayesarena.distributed import aggregate_dask

        source = aggregate_dask(str(data), scheduler=None if dask == "local" else dask,
                                by_category=by_category, on_invalid=on_invalid)
    else:
        votes = read_votes(data, on_invalid=on_invalid)
        # hierarchical specs read voters, tags and style per vote; the others only the cells
        source = votes if spec.hierarchical else aggregate(votes, by_category=by_category)
    post = fit_model(source, spec, method=method, seed=seed, chains=chains, warmup=warmup,
                     draws=draws)  # type: ignore[arg-type]
    _print_fit_report(post)
    console.print(_leaderboard_table(post.leaderboard(), top=top))
    _print_components(post)
    post.save(output)
    console.print(f"posterior written to {output}", highlight=False)


@command
def leaderboard(
    posterior: Annotated[Path, typer.Argument(help="Posterior file from `bayesarena fit`.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, csv or json.")] = "md",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")
                      ] = None,
    prob: Annotated[float, typer.Option(help="Credible level.")] = 0.95,
    base: Annotated[float, typer.Option(help="Mean rating, or the anchor's rating.")] = 1000.0,
    anchor: Annotated[str | None, typer.Option(help="Model pinned at --base.")] = None,
    category: Annotated[str | None, typer.Option(
        help="A category's board from the same pooled fit (specs with categories).")] = None,
) -> None:
    """Print or export the leaderboard of a saved posterior."""
    from bayesarena.leaderboard import export, render
    from bayesarena.posterior import Posterior

    if not 0 < prob < 1:
        raise BayesArenaError(f"--prob must be in (0, 1), got {prob}")
    table = Posterior.load(posterior).leaderboard(prob=prob, base=base, anchor=anchor,
                                                  category=category)
    if output is None:
        sys.stdout.write(render(table, fmt))
    else:
        export(table, output, fmt)
        console.print(f"leaderboard written to {output}", highlight=False)


@command
def simulate(
    output: Annotated[Path, typer.Option("-o", "--output", help="Votes file (.csv/.parquet/"
                                         ".jsonl).")] = Path("votes.csv"),
    models: Annotated[int, typer.Option(help="Number of models.")] = 30,
    votes: Annotated[int, typer.Option(help="Number of votes.")] = 20_000,
    rating_sd: Annotated[float, typer.Option(help="Spread of true ratings (Elo); LMArena's "
                                             "text board: 140.")] = 140.0,
    tie_rate: Annotated[float, typer.Option(help="Share of ties, both-bad included.")] = 0.25,
    crowded_top: Annotated[int, typer.Option(help="Squeeze the top K models 8 Elo apart.")
                           ] = 0,
    categories: Annotated[list[str] | None, typer.Option(
        "--category", help="A prompt category (repeat); deviations sd 22 Elo.")] = None,
    voters: Annotated[int, typer.Option(help="Named voters (heavy-tailed votes each).")] = 0,
    style: Annotated[bool, typer.Option(help="Simulate answer styles (conv_metadata).")
                     ] = False,
    policy: Annotated[str, typer.Option(help="Pairing policy in the loop: uniform, arena, "
                                        "eig, rank, topk, thompson.")] = "uniform",
    batch: Annotated[int, typer.Option(help="Votes between belief updates (policy in the "
                                       "loop).")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    truth: Annotated[Path | None, typer.Option(help="Also write the true ratings (CSV).")
                     ] = None,
) -> None:
    """Simulate an arena (LMArena-calibrated defaults) with a pairing policy in the loop."""
    from bayesarena import online
    from bayesarena.arena_sim import ArenaConfig, ArenaSimulator
    from bayesarena.policies import OBJECTIVES, select_batch
    from bayesarena.scale import DEFAULT_BASE, ELO_PER_LOGIT

    if models < 2 or votes < 1 or batch < 1:
        raise BayesArenaError("--models must be >= 2, --votes and --batch >= 1")
    if policy not in OBJECTIVES:
        raise BayesArenaError(f"unknown --policy {policy!r}: choose from {list(OBJECTIVES)}")
    sim = ArenaSimulator(ArenaConfig(n_models=models, rating_sd=rating_sd, tie_rate=tie_rate,
                                     crowded_top=crowded_top,
                                     categories=tuple(categories or ()), n_voters=voters,
                                     style=style), seed=seed)
    rng = np.random.default_rng(seed)
    state = online.init(sim.models) if policy != "uniform" else None
    with console.status("simulating votes") as status:
        while sim.n_votes < votes:
            size = min(batch, votes - sim.n_votes)
            if state is None:
                a = rng.integers(0, models, size)
                b = (a + rng.integers(1, models, size)) % models
            else:
                chosen = select_batch(state.belief, size, objective=policy, rng=rng)
                a, b = chosen.model_a, chosen.model_b
            flip = rng.random(size) < 0.5  # either model may be shown first
            a, b = np.where(flip, b, a), np.where(flip, a, b)
            cast = sim.vote(a, b)
            if state is not None:
                state = online.add_votes(state, cast.model_a, cast.model_b, cast.outcome)
            status.update(f"simulating votes: {sim.n_votes:,} / {votes:,}")
    _write_table(sim.frame(), output)
    console.print(f"{sim.n_votes:,} votes among {models} models ({policy} pairing) written "
                  f"to {output}", highlight=False)
    if truth is not None:
        import pandas as pd

        ratings = pd.DataFrame({"model": sim.models,
                                "rating": DEFAULT_BASE + ELO_PER_LOGIT * sim.theta})
        _write_table(ratings, truth)


@command
def recommend(
    posterior: Annotated[Path, typer.Argument(help="Posterior file.")],
    k: Annotated[int, typer.Option("-k", help="Number of pairs.")] = 10,
    objective: Annotated[list[str] | None, typer.Option(
        help="eig | rank | topk | thompson | arena | uniform, or NAME=WEIGHT (repeat for a "
             "mixture, e.g. --objective topk=0.7 --objective eig=0.3).")] = None,
    category: Annotated[str | None, typer.Option(help="Pairs for a prompt of this category."
                                                 )] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Models never to propose.")] = None,
    budget: Annotated[list[str] | None, typer.Option(
        help="MODEL=N: at most N of the k pairs may use MODEL (repeat).")] = None,
    floor: Annotated[float, typer.Option(help="Share of picks drawn uniformly (exploration "
                                         "floor).")] = 0.0,
    top_k: Annotated[int, typer.Option(help="k of the topk objective.")] = 5,
    combine: Annotated[str, typer.Option(
        help="slots: each pick draws one objective of a mixture; scores: each pick maximises "
             "the weighted sum of the (greedy) objectives' scores.")] = "slots",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Recommend the next pairs to show (information-targeted or baseline policies)."""
    from bayesarena.posterior import Posterior
    from bayesarena.recommend import recommend_pairs

    table = recommend_pairs(
        Posterior.load(posterior), k, objective=_mixture(objective or ["eig"]),
        category=category, exclude=exclude or (), budget=_assignments(budget, int, "--budget"),
        floor=floor, top_k=top_k, seed=seed, combine=combine)
    console.print(table.to_string(index=False), highlight=False)


def _assignments(items: list[str] | None, cast: type, option: str) -> dict | None:
    """``["a=1", "b=2"]`` -> ``{"a": 1, "b": 2}``; refuses anything else by name."""
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            out[name] = cast(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise BayesArenaError(f"{option} expects NAME=VALUE, got {item!r}")
    return out


def _mixture(items: list[str]) -> str | dict[str, float]:
    if len(items) == 1 and "=" not in items[0]:
        return items[0]
    return _assignments([i if "=" in i else f"{i}=1" for i in items], float, "--objective")


@command
def specs() -> None:
    """List the shipped model specs."""
    from bayesarena.spec import available_specs, load_spec

    for name in available_specs():
        console.print(f"{name:16s} {load_spec(name).description}", highlight=False)


@command
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out"),
    models: Annotated[int, typer.Option(help="Number of models.")] = 30,
    votes: Annotated[int, typer.Option(help="Number of votes.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Simulate an arena, fit it, print the leaderboard and the next pairs to show."""
    from bayesarena.aggregate import aggregate
    from bayesarena.fit import fit as fit_model
    from bayesarena.io import read_votes
    from bayesarena.leaderboard import export
    from bayesarena.recommend import recommend_pairs
    from bayesarena.simulate import simulate_arena

    out.mkdir(parents=True, exist_ok=True)
    df, truth = simulate_arena(models, votes, seed=seed)
    _write_table(df, out / "votes.parquet")
    _write_table(truth.ratings().rename_axis("model").reset_index(), out / "truth.csv")
    console.rule("[bold]bayesarena demo: a simulated arena")
    cells = aggregate(read_votes(out / "votes.parquet"))
    post = fit_model(cells, "bt-davidson", seed=seed)
    _print_fit_report(post)
    table = post.leaderboard()
    console.print(_leaderboard_table(table))
    post.save(out / "posterior.nc")
    for fmt in ("csv", "md", "json"):
        export(table, out / f"leaderboard.{fmt}")
    pairs = recommend_pairs(post, 5)
    console.rule("[bold]next pairs to show (expected information gain, nats)")
    console.print(pairs.to_string(index=False), highlight=False)
    true = truth.ratings()
    covered = ((table["rating_lower"] <= true[table["model"]].to_numpy())
               & (true[table["model"]].to_numpy() <= table["rating_upper"])).mean()
    console.print(f"true rating inside the 95% interval for {covered:.0%} of models "
                  f"(simulated truth in {out / 'truth.csv'})", highlight=False)
    console.print(f"written: {out}/posterior.nc, {out}/leaderboard.{{csv,md,json}}, "
                  f"{out}/votes.parquet", highlight=False)


@command
def compare(
    data: Annotated[Path, typer.Argument(help="Votes: CSV, JSON, JSONL or Parquet file.")],
    spec: Annotated[list[str] | None, typer.Option(
        "--spec", "-s", help="Spec name or models/X.toml; give two or more.")] = None,
    draws: Annotated[int, typer.Option(
        help="Posterior draws used for LOO (at most; thinned evenly per chain).")] = 1000,
    decisive_only: Annotated[bool, typer.Option(
        help="Compare on the decisive votes only, each spec by P(winner | decisive): for "
             "specs that do not model ties (bt) or only as half wins.")] = False,
    method: Annotated[str, typer.Option(help="nuts or laplace.")] = "nuts",
    seed: Annotated[int, typer.Option(help="Random seed of every fit.")] = 0,
    chains: Annotated[int | None, typer.Option(help="Override the specs' chains.")] = None,
    warmup: Annotated[int | None, typer.Option(help="Override the specs' warmup.")] = None,
    sampler_draws: Annotated[int | None, typer.Option(
        help="Override the specs' sampler draws per chain.")] = None,
    drop_invalid: Annotated[bool, typer.Option(
        help="Drop invalid rows (counted in the summary) instead of refusing the file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                       ] = False,
) -> None:
    """Fit several specs to the same votes and compare them by PSIS-LOO (one vote = one
    observation)."""
    import json

    from bayesarena.io import read_votes
    from bayesarena.loo import compare as compare_specs
    from bayesarena.spec import load_spec

    specs = list(spec or [])
    if len(specs) < 2:
        raise BayesArenaError("compare needs at least two specs: --spec A --spec B")
    for name in specs:
        load_spec(name)  # unknown specs fail before any reading or fitting
    votes = read_votes(data, on_invalid="drop" if drop_invalid else "raise")
    result = compare_specs(votes, specs, draws=draws, decisive_only=decisive_only,
                           method=method, seed=seed, chains=chains, warmup=warmup,
                           sampler_draws=sampler_draws)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    what = "decisive votes, P(winner | decisive)" if result.decisive_only else "votes"
    table = Table(title=f"PSIS-LOO on {result.n_votes:,} {what}", box=box.SIMPLE_HEAD)
    for col in ("Spec", "elpd_loo", "SE", "elpd_diff", "SE diff", "p_loo", "votes k>0.7",
                "weight"):
        table.add_column(col, justify="left" if col == "Spec" else "right", no_wrap=True)
    for name, r in result.table.iterrows():
        table.add_row(str(name), f"{r.elpd_loo:.1f}", f"{r.se:.1f}", f"{r.elpd_diff:.1f}",
                      f"{r.se_diff:.1f}", f"{r.p_loo:.1f}", f"{int(r.votes_k_high):,}",
                      f"{r.weight:.2f}")
    console.print(table)
    for sentence in result.sentences():
        console.print(sentence, highlight=False)
    for name, r in result.results.items():
        if r.votes_k_bad:
            console.print(f"[yellow]{name}: {r.votes_k_bad:,} votes have Pareto k > "
                          f"{r.good_k:.2f} (the threshold for {r.n_draws} draws): their LOO "
                          "estimates are unreliable[/]", highlight=False)


@command
def ppc(
    posterior: Annotated[Path, typer.Argument(help="Posterior file from `bayesarena fit`.")],
    data: Annotated[Path | None, typer.Option(
        help="The votes the posterior was fitted to: replicate vote by vote (exact for every "
             "spec, and checks the position effect).")] = None,
    figure: Annotated[Path | None, typer.Option(help="Write the figure (e.g. out/ppc.png).")
                      ] = None,
    draws: Annotated[int, typer.Option(help="Posterior draws replicated (at most).")] = 500,
    pairs: Annotated[int, typer.Option(help="Pairs with the most votes to check.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")
                       ] = False,
) -> None:
    """Posterior predictive checks: tie and both-bad rates, per-pair and per-category win
    rates, observed against replicated votes."""
    import json

    from bayesarena.posterior import Posterior
    from bayesarena.ppc import FLAG_P
    from bayesarena.ppc import ppc as run_ppc

    post = Posterior.load(posterior)
    votes = None
    if data is not None:
        from bayesarena.io import read_votes

        votes = read_votes(data)
    result = run_ppc(post, votes, draws=draws, pairs=pairs, seed=seed)
    if figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        result.figure(figure)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    level = f"{100 * result.prob:g}%"
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)

    def rate_table(title: str, df, keys: list[tuple[str, str]]) -> Table:
        out = Table(title=title, box=box.SIMPLE_HEAD)
        for label, _ in keys:
            out.add_column(label, no_wrap=True)
        for col in ("observed", "predicted", level, "p"):
            out.add_column(col, justify="right", no_wrap=True)
        for _, r in df.iterrows():
            pred = "—" if r["mean"] != r["mean"] else f"{r['mean']:.3f}"
            interval = ("—" if r["mean"] != r["mean"]
                        else f"{r['lower']:.3f}–{r['upper']:.3f}")
            p = "—" if r["p_value"] != r["p_value"] else f"{r['p_value']:.3f}"
            style = "bold red" if r["flag"] else None
            out.add_row(*[str(r[k]) for _, k in keys], f"{r['observed']:.3f}", pred, interval,
                        p, style=style)
        return out

    console.print(rate_table(f"Posterior predictive checks ({result.spec}, {result.n_draws} "
                             f"draws, per {result.units[:-1]})", result.overall,
                             [("statistic", "statistic")]))
    if not result.pairs.empty:
        console.print(rate_table("Share of decisive votes won by model_i, pairs with the most "
                                 "votes", result.pairs,
                                 [("model_i", "model_i"), ("model_j", "model_j"),
                                  ("votes", "votes")]))
    if not result.categories.empty:
        console.print(rate_table("Win rate per category (smallest p first)",
                                 result.categories.head(15),
                                 [("category", "category"), ("model", "model"),
                                  ("decisive", "decisive")]))
    n_stats = len(result.overall.dropna(subset=["p_value"])) + len(result.pairs) \
        + len(result.categories)
    console.print(f"{len(result.flagged)} of {n_stats} statistics flagged "
                  f"(two-sided posterior predictive p < {FLAG_P:g})", highlight=False)
    if figure is not None:
        console.print(f"figure written to {figure}", highlight=False)


@command
def publish(
    posterior: Annotated[Path, typer.Argument(help="Posterior file from `bayesarena fit`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Site folder to write.")
                      ] = Path("site"),
    title: Annotated[str | None, typer.Option(help="Page title.")] = None,
    prob: Annotated[float, typer.Option(help="Credible level.")] = 0.95,
) -> None:
    """Write a self-contained static leaderboard site (index.html plus CSV/JSON downloads)."""
    from bayesarena.posterior import Posterior
    from bayesarena.publish import publish as publish_site

    index = publish_site(Posterior.load(posterior), output, title=title, prob=prob)
    console.print(f"site written to {output}/ (open {index})", highlight=False)


@command
def audit(
    data: Annotated[Path, typer.Argument(help="Votes: CSV, JSON, JSONL or Parquet file.")],
    spec: Annotated[str, typer.Option("--spec", "-s", help="Pairwise spec name or "
                                      "models/X.toml.")] = "bt-davidson",
    fmt: Annotated[str, typer.Option("--format", "-f", help="md or json.")] = "md",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")
                      ] = None,
    top: Annotated[int, typer.Option(help="Top ranks whose stability is studied.")] = 3,
    heavy_voters: Annotated[int, typer.Option(
        help="Heaviest voters refitted without their votes.")] = 10,
    replicates: Annotated[int, typer.Option(
        help="Posterior predictive replicates of the intransitivity check.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    drop_invalid: Annotated[bool, typer.Option(
        help="Drop invalid rows (counted in the summary) instead of refusing the file.")] = False,
) -> None:
    """Audit a vote set: coverage, position bias, intransitivity, heavy voters and the votes
    that decide #1 (Laplace refits), as Markdown or JSON."""
    from bayesarena.audit import audit as run_audit
    from bayesarena.audit import render as render_audit
    from bayesarena.io import read_votes

    if fmt not in ("md", "json"):
        raise BayesArenaError(f"unknown audit format {fmt!r}: use 'md' or 'json'")
    votes = read_votes(data, on_invalid="drop" if drop_invalid else "raise")
    report = run_audit(votes, spec=spec, top=top, heavy_voters=heavy_voters, seed=seed,
                       replicates=replicates)
    if output is None:
        sys.stdout.write(render_audit(report, fmt))
    else:
        report.write(output, fmt)
        console.print(f"audit written to {output}", highlight=False)


@command
def plot(
    source: Annotated[Path, typer.Argument(help="Posterior file from `bayesarena fit` (for "
                                           "active-sampling: a benchmark results JSON).")],
    kind: Annotated[str, typer.Argument(help="forest | rank-heatmap | win-matrix | "
                                        "category-shifts | ppc | active-sampling")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Figure file: .png, .pdf, "
                                         ".svg ...")] = Path("figure.png"),
    category: Annotated[str | None, typer.Option(
        help="A category board (forest, rank-heatmap, win-matrix) or the one category shown "
             "(category-shifts).")] = None,
    top: Annotated[int | None, typer.Option(help="Show only the N best models.")] = None,
    data: Annotated[Path | None, typer.Option(
        help="The votes the posterior was fitted to (required by ppc).")] = None,
    prob: Annotated[float, typer.Option(help="Credible level.")] = 0.95,
) -> None:
    """Draw a figure (colour-blind-safe, sized for a paper, 200 dpi)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesarena.plots import plot as draw
    from bayesarena.plots import save

    fig = draw(source, kind, category=category, top=top, data=data, prob=prob)
    save(fig, output)
    plt.close(fig)  # only the ppc figure is drawn through pyplot; closing others is a no-op
    console.print(f"{kind} figure written to {output}", highlight=False)


def _write_table(df, path: Path) -> None:
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        df.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        df.to_json(path, orient="records")
    else:
        raise BayesArenaError(f"unsupported output {path}: use .csv, .parquet, .jsonl or .json")


if __name__ == "__main__":
    main()
