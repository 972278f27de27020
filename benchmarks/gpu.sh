#!/usr/bin/env bash
# The GPU measurements (issue 5), in one call: run from the repository root on a machine whose
# Python has a CUDA build of JAX and bayesarena's dependencies (PYTHON, default python3).
#
#   1. the full arena.toml fit (150 models x 10 categories x 1M votes, the spec's settings:
#      kernel auto -> split HMC, chains auto -> vectorized on the one GPU), fitted twice in
#      one process: the first fit compiles, the second reuses the compiled programs;
#   2. bt-davidson at 150 models x 1M votes: Laplace and NUTS, cold and warm compilation cache
#      (benchmarks/fit_scaling.py, vectorized chains);
#   3. the full arena fit with NUTS (kernel = "nuts"), in the time that is left.
#
# Each step has its own time limit so that a slow one cannot take the others' results with
# it; results land in benchmarks/results/*_gpu*.json and are copied to $OUT when it is set.
# TOTAL_S (default 540) is the budget for the whole script. Arguments name the steps to run
# (arena_split, fit_scaling, arena_nuts; default all); ARENA_ARGS adds arguments to both
# arena steps (e.g. "--refit" for arena_nuts too).
set -u
PY=${PYTHON:-python3}
TOTAL_S=${TOTAL_S:-540}
DEST=${OUT:-benchmarks/results}
LOG="$DEST/gpu_log.txt"
export PYTHONUNBUFFERED=1
export BAYESARENA_JAX_CACHE=${BAYESARENA_JAX_CACHE:-/tmp/bayesarena-jax-gpu}
START=$(date +%s)
left() { echo $((TOTAL_S - ($(date +%s) - START))); }
keep() { [ "$DEST" = benchmarks/results ] || cp "$@" "$DEST"/ 2>/dev/null; }
step() {  # step NAME SECONDS COMMAND...: run with a limit, log, report its status
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s, $(left)s left) $(date -u +%T)" | tee -a "$LOG"
    timeout "$limit" "$@" >>"$LOG" 2>&1
    echo "== $name: exit $? after $(( $(date +%s) - START ))s" | tee -a "$LOG"
}
mkdir -p "$DEST"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm \
    --format=csv 2>&1 | tee -a "$LOG"
$PY -c "import jax, numpyro; print('jax', jax.__version__, 'numpyro', numpyro.__version__,
jax.default_backend(), jax.devices())" 2>&1 | tee -a "$LOG"

STEPS=${*:-arena_split fit_scaling arena_nuts}
wanted() { [[ " $STEPS " == *" $1 "* ]]; }
if wanted arena_split; then
    step arena_split $(( $(left) < 300 ? $(left) : 300 )) \
        $PY benchmarks/arena_scaling.py --refit ${ARENA_ARGS:-} --out gpu
    keep benchmarks/results/arena_scaling_gpu.json
fi
if wanted fit_scaling; then
    step fit_scaling $(( $(left) < 150 ? $(left) : 150 )) \
        $PY benchmarks/fit_scaling.py --chain-methods vectorized --out gpu
    keep benchmarks/results/fit_scaling_gpu.json benchmarks/results/fit_scaling_gpu.md
fi
if wanted arena_nuts && [ "$(left)" -gt 60 ]; then
    step arena_nuts $(( $(left) - 10 )) \
        $PY benchmarks/arena_scaling.py --kernel nuts ${ARENA_ARGS:-} --out gpu_nuts
    keep benchmarks/results/arena_scaling_gpu_nuts.json
fi
grep -h '"fit_s"\|"refit_s"\|"nuts_s"\|max_rhat\|min_ess_bulk\|divergences\|mean_leapfrog_steps"' \
    "$DEST"/arena_scaling_gpu*.json 2>/dev/null
cat "$DEST"/fit_scaling_gpu.md 2>/dev/null
