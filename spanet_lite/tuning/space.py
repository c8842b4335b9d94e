"""The search space of ``spanet-tune``: option name -> range or choices, read from YAML.

::

    hidden_dim: [32, 64, 128]                              # choices (a list)
    num_encoder_layers: {low: 1, high: 6}                  # integers (an integer option)
    learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}  # floats (a float option) on a log scale
    dropout: {low: 0.0, high: 0.3, step: 0.05}             # floats on a grid
    optimizer: {choices: [AdamW, Adam]}                    # choices (spelled out)

Names are options-file keys (SPANet's meaning). Every choice and both ends of every range
are checked with the options validator before the first trial, so a typo fails in one
line at start-up and not in trial 17. Nothing here imports Optuna.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanet_lite.config.options import Options, option_fields
from spanet_lite.errors import InputError


@dataclass(frozen=True)
class Parameter:
    """One searched option: a list of ``choices``, or a range [``low``, ``high``]."""

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    def describe(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        scale = ", log" if self.log else (f", step {self.step:g}" if self.step else "")
        return f"[{self.low:g}, {self.high:g}{scale}]"

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna ``trial`` picks."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log, step=self.step)


DEFAULT_SPACE: tuple[Parameter, ...] = (
    Parameter("hidden_dim", choices=(16, 32, 64, 128)),
    Parameter("num_encoder_layers", low=1, high=6, integer=True),
    Parameter("learning_rate", low=1e-4, high=1e-2, log=True),
    Parameter("batch_size", choices=(64, 128, 256, 512, 1024)),
    Parameter("dropout", low=0.0, high=0.3),
)
"""Width, depth, learning rate, batch size, dropout: what is tuned without a space file."""

_FIELDS = {f.name: f for f in option_fields()}
_NOT_SEARCHABLE = {"event_info_file", "training_file", "validation_file", "testing_file", "epochs"}


def load_space(path: str | Path) -> tuple[Parameter, ...]:
    """Read a search-space YAML file; every problem is a one-line :class:`InputError`. Read by the
    YAML loader of every user file (:func:`load_yaml_with_lines`), so that a key written twice,
    an alias bomb or an integer Python cannot convert is refused as in an event file; ``1e-4``
    is the number it is in an options file (:class:`NumbersLoader`), not YAML 1.1's text."""
    from spanet_lite.config.yaml_lines import NumbersLoader, load_yaml_with_lines
    from spanet_lite.io import read_user_text

    text = read_user_text(path, "search space file", "YAML")
    return parse_space(load_yaml_with_lines(text, str(path), NumbersLoader).data, source=str(path))


def parse_space(document: Any, source: str = "<space>") -> tuple[Parameter, ...]:
    """The parameters of an already parsed search-space document (a mapping)."""
    if not isinstance(document, dict) or not document:
        raise InputError(source, "", "a mapping of option names to ranges or choices",
                         "nothing" if not document else type(document).__name__)
    parameters = []
    for name, value in document.items():
        parameters.append(_parameter(str(name), value, source))
    return tuple(parameters)


def _parameter(name: str, value: Any, source: str) -> Parameter:
    if name not in _FIELDS or name in _NOT_SEARCHABLE:
        from spanet_lite.config.options import unknown_key_hint

        hint = unknown_key_hint(name, [n for n in _FIELDS if n not in _NOT_SEARCHABLE])
        raise InputError(source, name, "an options-file key to search" + (f" {hint.strip()}" if hint else ""),
                         "an unknown or unsearchable key")
    if isinstance(value, list):
        value = {"choices": value}
    if not isinstance(value, dict):
        raise InputError(source, name, "a list of choices or {low, high[, log, step]}", repr(value))
    unknown = set(value) - {"choices", "low", "high", "log", "step"}
    if unknown:
        raise InputError(source, name, "only the keys choices, low, high, log, step",
                         ", ".join(sorted(unknown)))
    if "choices" in value:
        choices = value["choices"]
        if set(value) != {"choices"} or not isinstance(choices, list) or not choices:
            raise InputError(source, name, "a non-empty list of choices (and no range keys)", repr(value))
        return Parameter(name, choices=tuple(_typed_choice(name, choice, source) for choice in choices))
    kind = str(_FIELDS[name].type)
    if kind not in ("int", "float"):  # both ends of partial_events {low: 0, high: 1} pass as 0/1,
        # but every trial drew a fraction between them, which the option refuses
        raise InputError(source, name, f"a list of choices (the option is {kind}, no number to draw "
                         "from a range)", repr(value))
    low, high = value.get("low"), value.get("high")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                  for v in (low, high))
    if not numbers or low >= high:  # type: ignore[operator]
        raise InputError(source, name, "numbers low < high", f"low {low!r}, high {high!r}")
    log, step = value.get("log", False), value.get("step")
    if not isinstance(log, bool):  # bool("no") is True: a quoted or misspelt flag would turn the scale on
        raise InputError(source, f"{name}.log", "true or false", repr(log))
    if log and low <= 0:  # type: ignore[operator]
        raise InputError(source, name, "low > 0 on a log scale", repr(low))
    if step is not None and (log or not isinstance(step, int | float) or isinstance(step, bool) or step <= 0):
        raise InputError(source, name, "a positive step (and no log scale)", repr(step))
    if step is not None and step > high - low:  # type: ignore[operator]
        raise InputError(source, name, f"a step of at most high - low = {high - low:g} (else only low "
                         "is ever tried)", repr(step))
    # The option's type decides, as in an options file: focal_gamma {low: 0, high: 2} is a float
    # range (its ends written as integers drew only 0, 1 and 2), num_encoder_layers an integer one.
    integer = kind == "int"
    whole = isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int))
    if integer and not whole:
        raise InputError(source, name, "integer low, high (and step): the option is a whole number",
                         f"low {low!r}, high {high!r}")
    return Parameter(name, low=low, high=high, log=log, step=step, integer=integer)


def _typed_choice(name: str, value: Any, source: str) -> Any:
    """A choice as an options file reads the same value (the loader's one type rule): SPANet's
    spellings (``GELU``, ``combine_pair_loss: "None"``, ``0``/``1`` for a boolean, ``32.0`` for an
    integer) are taken as there, and the trial gets the value the file would give."""
    from spanet_lite.config.options_file import typed_overrides

    try:
        return typed_overrides({name: value})[name]
    except InputError:
        kind = str(_FIELDS[name].type)
        raise InputError(source, name, f"choices of the option's type ({kind})", repr(value)) from None


def check_space(parameters: tuple[Parameter, ...], base: Options, source: str) -> None:
    """Every choice and both ends of every range must be a valid option value on ``base``."""
    from spanet_lite.config.options_validation import validate_options

    for parameter in parameters:
        values = parameter.choices if parameter.choices is not None else (parameter.low, parameter.high)
        for value in values:
            try:
                validate_options(base.replace(**{parameter.name: value}), None)
            except TypeError:
                raise InputError(source, parameter.name, "values of the option's type", repr(value)) from None
            except InputError as error:
                raise InputError(source, parameter.name, f"values the options allow ({error.expected}"
                                 + (f", got {error.got}" if error.got else "") + f" at {error.where})",
                                 repr(value)) from None
