"""YAML loading that remembers line numbers and refuses duplicate keys.

``yaml.safe_load`` forgets where things were and silently keeps the *last* of two equal
mapping keys (so a particle written twice simply vanishes). We compose the document into
nodes instead and build plain Python values from them ourselves, recording for every
location the line it starts on. A location is a *path*: a tuple of mapping keys and list
indices from the document root, e.g. ``("PERMUTATIONS", "ht", 0)``, printed as
``PERMUTATIONS.ht[0]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from spanet_lite.config.suggest import describe
from spanet_lite.errors import InputError
from spanet_lite.io import integer_too_long

YamlPath = tuple[Any, ...]
MAX_VALUES = 100_000
"""Values a document may hold after expanding its aliases; event files hold a few hundred.
Nested aliases ("billion laughs") would otherwise expand without bound."""
NOT_GIVEN: Any = object()  # marks "no value to report" (None itself is reported as "nothing")


def format_path(path: YamlPath) -> str:
    """``("PERMUTATIONS", "ht", 0)`` -> ``PERMUTATIONS.ht[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True)
class YamlDocument:
    """Plain Python data (dicts keep file order) and the 1-based line of every path in it."""

    data: Any
    lines: dict[YamlPath, int] = field(default_factory=dict)
    source: str = "<yaml>"

    def where(self, path: YamlPath) -> str:
        """The location text used in error messages: ``EVENT.t1[2] (line 14)``."""
        text = format_path(path)
        line = self.lines.get(tuple(path))
        if line is None:
            return text
        return f"{text} (line {line})" if text else f"line {line}"

    def error(
        self, path: YamlPath, expected: str, got: Any = NOT_GIVEN, *, got_text: str | None = None
    ) -> InputError:
        """An :class:`InputError` at ``path``; ``got`` is described, ``got_text`` used verbatim."""
        found = got_text if got_text is not None else (None if got is NOT_GIVEN else describe(got))
        return InputError(self.source, self.where(path), expected, found)


def load_yaml_with_lines(
    text: str, source: str, loader_class: type[yaml.SafeLoader] = yaml.SafeLoader
) -> YamlDocument:
    """Parse ``text`` (one YAML document) into a :class:`YamlDocument`; ``loader_class``: a
    ``yaml.SafeLoader`` subclass that reads some scalars otherwise (e.g. :class:`NumbersLoader`).

    Raises :class:`InputError` for syntax errors (with line and column), characters YAML does
    not allow (NUL and other control characters), a key written twice in one mapping (naming
    both lines) and aliases that expand to more than :data:`MAX_VALUES` values.
    """
    loader: yaml.SafeLoader | None = None
    try:
        loader = loader_class(text)
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, {}, source)
        lines: dict[YamlPath, int] = {(): node.start_mark.line + 1}
        data = _Builder(loader, source, lines).build(node, ())
        return YamlDocument(data, lines, source)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = error.problem or error.context or "unreadable YAML"
        if error.problem and error.context and error.context_mark is not None:
            problem += f" ({error.context} started at line {error.context_mark.line + 1})"
        raise InputError(source, where, "valid YAML", f"a syntax error: {problem}") from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, max(error.position, 0)) + 1
        character = error.character if isinstance(error.character, str) else chr(error.character)
        raise InputError(
            source, f"line {line}", "printable text (YAML allows no control characters)",
            f"the character {character!a}",
        ) from None
    except yaml.YAMLError as error:
        raise InputError(source, "", "valid YAML", str(error).splitlines()[0]) from None
    except RecursionError:  # an alias inside its own anchor (a: &x [*x]), or thousands of nested brackets
        raise InputError(
            source, "", "YAML without self-referencing aliases, nested no deeper than Python reads",
            "a recursive or too deeply nested structure",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


class NumbersLoader(yaml.SafeLoader):
    """The safe loader, reading ``1e-4`` as the number it is in JSON, Python and YAML 1.2:
    PyYAML follows YAML 1.1, whose floats need a dot (``1.0e-4``), and reads it as text."""


NumbersLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

_PLAIN_TAGS = ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Builder:
    """Turns composed nodes into dicts/lists/scalars while filling the path -> line map."""

    def __init__(self, loader: yaml.SafeLoader, source: str, lines: dict[YamlPath, int]) -> None:
        self.loader = loader
        self.source = source
        self.lines = lines
        self.values = 0
        self.written: dict[yaml.MappingNode, int] = {}
        """Pairs each mapping writes itself (not merged in), counted before PyYAML's
        ``flatten_mapping`` rewrites the node in place: an anchored mapping with a merge, flattened
        once, is met again through an alias (``c: *b``) or another merge."""

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise InputError(
                self.source, format_path(path) or "",
                f"at most {MAX_VALUES:,} values after expanding aliases (*name)",
                "more (nested aliases?)",
            )
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) and node.tag not in _PLAIN_TAGS:
            # Scalars with a tag the safe loader does not know fail there; lists and mappings are
            # built here, so an unknown tag on them would otherwise be dropped without a word.
            kind = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
            raise InputError(
                self.source, f"{format_path(path) or 'top level'} (line {node.start_mark.line + 1})",
                f"a plain YAML {kind} (no tags)", "the tag " + node.tag.replace("tag:yaml.org,2002:", "!!"),
            )
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                self.lines.setdefault((*path, index), child.start_mark.line + 1)
                items.append(self.build(child, (*path, index)))
            return items
        if isinstance(node, yaml.MappingNode):
            return self.build_mapping(node, path)
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: YamlPath) -> Any:
        """The value of a scalar node. An integer longer than Python converts (over 4,300 digits)
        raised a bare ValueError from PyYAML: a traceback, now one line at its place."""
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError as error:
            got = integer_too_long(error, str(node.value))
            if got is None:
                raise
            where = f"{format_path(path) or 'top level'} (line {node.start_mark.line + 1})"
            raise InputError(self.source, where, "a value Python can read", got) from None

    def build_mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[Any, Any]:
        """A mapping as PyYAML (SPANet's loader) builds it, refusing a key the mapping itself
        writes twice. Keys merged in (``<<: *anchor``) are YAML's defaults: a key written in the
        mapping, or a later merge, overrides them without a word, keeping the merged key's place
        (so ``Leptons: {<<: *jet_features, eta: none}`` is valid, and orders features as SPANet)."""
        self.count_written(node)
        self.loader.flatten_mapping(node)  # resolves merge keys: their pairs come first
        first_written = len(node.value) - self.written[node]
        keys: list[Any] = []
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError(
                    self.source,
                    f"{format_path(path) or 'top level'} (line {key_node.start_mark.line + 1})",
                    "a plain name as key",
                    describe(self.loader.construct_object(key_node, deep=True)),
                )
            keys.append(self.scalar(key_node, path))
        winner = {key: index for index, key in enumerate(keys)}  # the last pair of a key wins
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for index, ((key_node, value_node), key) in enumerate(zip(node.value, keys)):
            line = key_node.start_mark.line + 1
            if index >= first_written:
                if key in first_line:
                    location = format_path((*path, key))
                    raise InputError(
                        self.source,
                        f"{location} (line {line})",
                        f"each key once in a mapping (first written at line {first_line[key]})",
                        f"{key!r} again",
                    )
                first_line[key] = line
            if winner[key] != index:
                result.setdefault(key, None)  # overridden: the key keeps this place, as in PyYAML
                continue
            self.lines.setdefault((*path, key), line)
            result[key] = self.build(value_node, (*path, key))
        return result

    def count_written(self, node: yaml.MappingNode) -> None:
        """Record the pairs ``node`` and every mapping it merges in write themselves, before the
        first ``flatten_mapping`` of ``node`` (which flattens those mappings too) removes the
        merge keys that tell merged pairs from written ones."""
        if node in self.written:
            return
        self.written[node] = sum(key_node.tag != _MERGE_TAG for key_node, _ in node.value)
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                continue
            merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for sub in merged:
                if isinstance(sub, yaml.MappingNode):
                    self.count_written(sub)
