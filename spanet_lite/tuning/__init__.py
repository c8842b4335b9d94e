"""Hyperparameter search over training options (``spanet-tune``), with Optuna.

:mod:`.space` reads the search space (no Optuna import); :mod:`.search` runs the study.
Optuna is an optional dependency: ``pip install 'spanet-lite[tune]'``.
"""

from spanet_lite.tuning.space import DEFAULT_SPACE, Parameter, load_space, parse_space

__all__ = ["DEFAULT_SPACE", "Parameter", "load_space", "parse_space"]
