"""Training schedules: how much of the KL term the objective sees (β) and how large Adam's step
is (learning rate) at each point of training."""

from __future__ import annotations

import math

KL_SCHEDULES = ("constant", "linear", "cyclical")
LR_SCHEDULES = ("constant", "cosine")


def kl_weight(schedule: str, beta: float, epoch: float, warmup_epochs: float) -> float:
    """β at fractional epoch ``epoch`` (0 at the first step; 1.5 is halfway through epoch 2).

    Parameters
    ----------
    schedule : {"constant", "linear", "cyclical"}
        ``constant``: β throughout. ``linear``: KL warm-up (Bowman et al. 2016), β grows linearly
        from 0 to β over ``warmup_epochs`` then stays. ``cyclical``: (Fu et al. 2019, R = 0.5) the
        warm-up repeats with period ``2 * warmup_epochs``: a ramp, then a plateau at β.
    beta : float
        Final weight of the KL term.
    epoch : float
        Training progress in epochs.
    warmup_epochs : float
        Length of one ramp; 0 makes every schedule constant.

    Returns
    -------
    float
    """
    if schedule == "constant" or warmup_epochs <= 0:
        return beta
    if schedule == "cyclical":
        epoch = epoch % (2.0 * warmup_epochs)
    return beta * min(1.0, epoch / warmup_epochs)


def lr_factor(schedule: str, progress: float) -> float:
    """Multiplier of the base learning rate at ``progress`` = step / total steps, in [0, 1).

    Parameters
    ----------
    schedule : {"constant", "cosine"}
        ``constant``: the base rate throughout. ``cosine``: half a cosine from the base rate
        down to 0 at the last of ``epochs`` (Loshchilov & Hutter 2017, without restarts); a
        run that early stopping ends sooner never reaches the small rates.
    progress : float
        Fraction of the planned training done, fractional epoch / ``epochs``.

    Returns
    -------
    float
        In (0, 1].
    """
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
