"""The CLI on good and bad input, through the real entry point in a subprocess."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "bayesarena.cli", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)


def test_simulate_fit_leaderboard(tmp_path):
    r = run("simulate", "-o", "votes.csv", "--models", "6", "--votes", "1500", "--seed", "2",
            "--truth", "truth.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / "votes.csv")) == 1500
    r = run("fit", "votes.csv", "-o", "post.nc", "--method", "laplace", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "used 1,500 rows" in r.stdout
    r = run("leaderboard", "post.nc", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["models"]) == 6
    r = run("leaderboard", "post.nc", "--format", "csv", "-o", "lb.csv", cwd=tmp_path)
    assert r.returncode == 0 and len(pd.read_csv(tmp_path / "lb.csv")) == 6
    r = run("recommend", "post.nc", "-k", "3", cwd=tmp_path)
    assert r.returncode == 0 and "eig" in r.stdout


def test_bad_input_is_one_line_error(tmp_path):
    pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "x"],
                  "winner": ["model_a", "draw?"]}).to_csv(tmp_path / "bad.csv", index=False)
    r = run("fit", "bad.csv", cwd=tmp_path)
    assert r.returncode == 2
    assert "draw?" in r.stderr and "winner" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3  # one message (rich may wrap a long line)


def test_missing_file_and_bad_format(tmp_path):
    r = run("fit", "nope.csv", cwd=tmp_path)
    assert r.returncode == 2 and "nope.csv" in r.stderr and "Traceback" not in r.stderr
    r = run("leaderboard", "nope.nc", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run("fit", "x.csv", "--model", "no-such-spec", cwd=tmp_path)
    assert r.returncode == 2


def test_simulate_with_policy_and_recommend_mixture(tmp_path):
    r = run("simulate", "-o", "votes.csv", "--models", "8", "--votes", "1200", "--policy",
            "topk", "--batch", "300", "--crowded-top", "3", "--truth", "truth.csv",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    votes = pd.read_csv(tmp_path / "votes.csv")
    assert len(votes) == 1200 and set(votes.winner) <= {"model_a", "model_b", "tie",
                                                        "tie (bothbad)"}
    truth = pd.read_csv(tmp_path / "truth.csv")
    top = truth.sort_values("rating", ascending=False).rating.to_numpy()[:3]
    assert abs(top[0] - top[1] - 8.0) < 1e-9 and abs(top[1] - top[2] - 8.0) < 1e-9
    r = run("fit", "votes.csv", "-o", "post.nc", "--method", "laplace", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run("recommend", "post.nc", "-k", "4", "--objective", "topk=0.7", "--objective",
            "eig=0.3", "--budget", "model-0=1", "--exclude", "model-1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()[1:]
    assert len(lines) == 4 and not any("model-1 " in f"{ln} " for ln in lines)
    assert sum("model-0 " in f"{ln} " for ln in lines) <= 1
    r = run("recommend", "post.nc", "-k", "3", "--objective", "topk=0.7", "--objective",
            "eig=0.3", "--combine", "scores", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("0.3*eig+0.7*topk") == 3 or r.stdout.count("0.7*topk+0.3*eig") == 3
    r = run("recommend", "post.nc", "--objective", "eig", "--objective", "arena",
            "--combine", "scores", cwd=tmp_path)
    assert r.returncode == 2 and "greedy objectives" in r.stderr
    r = run("recommend", "post.nc", "--objective", "best", cwd=tmp_path)
    assert r.returncode == 2 and "unknown objective" in r.stderr
    r = run("simulate", "--policy", "greedy", cwd=tmp_path)
    assert r.returncode == 2 and "unknown --policy" in r.stderr


def test_fit_with_dask_aggregation_equals_the_duckdb_path(tmp_path):
    """``--dask`` reads the same Parquet log into the same cells, so the same seed gives the
    same posterior; a hierarchical spec, which needs the votes themselves, is refused."""
    from bayesarena import Posterior

    r = run("simulate", "-o", "votes.parquet", "--models", "6", "--votes", "1500", "--seed", "4",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name, extra in (("duckdb.nc", ()), ("dask.nc", ("--dask", "synchronous"))):
        r = run("fit", "votes.parquet", "-o", name, "--method", "laplace", *extra, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "used 1,500 rows" in r.stdout
    duckdb, dask = (Posterior.load(tmp_path / name) for name in ("duckdb.nc", "dask.nc"))
    assert duckdb.models == dask.models
    np.testing.assert_array_equal(duckdb.theta_draws(), dask.theta_draws())
    r = run("fit", "votes.parquet", "--model", "arena", "--dask", "synchronous", cwd=tmp_path)
    assert r.returncode == 2 and "--dask" in r.stderr and "Traceback" not in r.stderr
