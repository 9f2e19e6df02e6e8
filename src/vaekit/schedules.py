"""β schedules: how much of the KL term the objective sees at each point of training."""

from __future__ import annotations

KL_SCHEDULES = ("constant", "linear", "cyclical")


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
