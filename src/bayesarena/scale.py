"""The Elo scale: ``rating = base + 400 / ln(10) * theta`` (Elo 1978; as on LMArena).

On this scale a gap of 400 points is 10:1 odds under Bradley-Terry. Strengths are identified by
sum-to-zero, so by default the mean rating is ``base``; with an anchor, model ``anchor`` is put
at rating ``base`` exactly in every draw (a shift, so ranks and gaps are unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bayesarena.validation import check_models

#: Elo points per unit of logit strength.
ELO_PER_LOGIT: float = 400.0 / math.log(10.0)

DEFAULT_BASE: float = 1000.0


def to_elo(
    theta: np.ndarray,
    models: Sequence[str],
    *,
    base: float = DEFAULT_BASE,
    anchor: str | None = None,
) -> np.ndarray:
    """Map strengths (last axis = model) to Elo ratings; ``anchor`` pins one model at ``base``."""
    theta = np.asarray(theta, dtype=float)
    if anchor is not None:
        check_models([anchor], models)
        theta = theta - theta[..., list(models).index(anchor)][..., None]
    return base + ELO_PER_LOGIT * theta


def elo_to_logit(points: float) -> float:
    """Convert an Elo gap to a logit-scale strength gap."""
    return points / ELO_PER_LOGIT
