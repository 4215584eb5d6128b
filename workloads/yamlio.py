"""Safe YAML input/output and the user-facing input error shared by every bitloop package.

Every reader in bitloop reports a bad input as an :class:`InputError` that names the
file, the key path inside it and what was expected; the CLI prints it as one line and
exits with status 2. Keys are normalized so that Timeloop's hyphenated spellings
(``read-write``, ``data-spaces``) and underscored ones are the same.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import yaml


class InputError(Exception):
    """A user mistake in an input file or argument (no traceback is shown for it).

    Attributes:
        source: file path (or a short label such as ``<mapping>``) the bad value came from.
        key: dotted key path inside the source, e.g. ``problem.instance.C``.
        expected: what was expected there.
    """

    def __init__(self, source: str | os.PathLike | None, key: str | None, expected: str):
        self.source = _one_line(str(source)) if source is not None else "<input>"
        self.key = _one_line(key or "")
        self.expected = _one_line(expected)
        where = f"{self.source}: {self.key}: " if self.key else f"{self.source}: "
        super().__init__(f"{where}{expected}")

    def __reduce__(self) -> tuple:
        # Rebuild from the constructor's arguments so the error crosses process boundaries intact.
        return (InputError, (self.source, self.key or None, self.expected))


# Limits on what one YAML document may expand to (a spec or Timeloop file is far below them).
MAX_YAML_DEPTH = 100            # nested mappings/sequences
MAX_YAML_NODES = 2_000_000      # nodes after expanding every alias (billion-laughs guard)


class _YamlLimit(Exception):
    """A YAML document beyond a limit (depth, alias expansion, recursive alias)."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where, self.message = where, message


def _one_line(text: str) -> str:
    """``text`` with line breaks escaped, so an error message stays one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class _SafeLoaderWithTags(yaml.SafeLoader):
    """SafeLoader that keeps Timeloop v0.4 tags (``!Component``...) as a ``_tag`` key and
    refuses documents nested deeper than :data:`MAX_YAML_DEPTH` or with recursive aliases."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._open_anchors: set[str] = set()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        where = _mark(event.start_mark)
        if isinstance(event, yaml.AliasEvent) and event.anchor in self._open_anchors:
            raise _YamlLimit(where, f"recursive alias *{event.anchor} (a node cannot contain itself)")
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _YamlLimit(where, f"nested deeper than {MAX_YAML_DEPTH} levels (limit MAX_YAML_DEPTH)")
        anchor = getattr(event, "anchor", None) if not isinstance(event, yaml.AliasEvent) else None
        if anchor:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(anchor)


def _mark(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "document"


def _tagged_mapping(loader: Any, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        data = loader.construct_mapping(node, deep=True)
        data["_tag"] = tag_suffix
        return data
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_SafeLoaderWithTags.add_multi_constructor("!", _tagged_mapping)

if getattr(yaml, "CSafeLoader", None) is not None:
    class _CSafeLoaderWithTags(yaml.CSafeLoader):  # type: ignore[name-defined,misc]
        """libyaml's SafeLoader with the same ``!Tag`` handling (limits: :func:`_check_events`)."""

    _CSafeLoaderWithTags.add_multi_constructor("!", _tagged_mapping)
else:  # PyYAML built without libyaml
    _CSafeLoaderWithTags = None


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the document with every alias expanded (shared nodes counted at each use)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        kids = [x for pair in node.value for x in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        if children_done:
            sizes[id(node)] = 1 + sum(sizes[id(k)] for k in kids)
            if sizes[id(node)] > MAX_YAML_NODES:
                raise _YamlLimit(_mark(node.start_mark), f"expands to more than {MAX_YAML_NODES:,} nodes through "
                                 "aliases (limit MAX_YAML_NODES)")
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
    return sizes[id(root)]


def normalize_key(key: Any) -> Any:
    """Return ``key`` with hyphens replaced by underscores (non-strings unchanged)."""
    return key.replace("-", "_") if isinstance(key, str) else key


def normalize_keys(data: Any) -> Any:
    """Recursively normalize mapping keys (hyphen -> underscore) in loaded YAML data."""
    if isinstance(data, dict):
        return {normalize_key(k): normalize_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [normalize_keys(v) for v in data]
    return data


def _check_events(text: str) -> None:
    """Refuse, from libyaml's event stream and before anything is composed, a document nested
    deeper than :data:`MAX_YAML_DEPTH` or holding a recursive alias (the same rules as
    :class:`_SafeLoaderWithTags`)."""
    depth, open_anchors = 0, []
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            open_anchors.pop()
        elif isinstance(event, yaml.NodeEvent):
            if isinstance(event, yaml.AliasEvent) and event.anchor in open_anchors:
                raise _YamlLimit(_mark(event.start_mark), f"recursive alias *{event.anchor}")
            if depth + 1 > MAX_YAML_DEPTH:
                raise _YamlLimit(_mark(event.start_mark), "too deep")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                open_anchors.append(event.anchor)


def _single_document(loader: Any) -> Any:
    """The one document of ``loader`` (None if empty), refused past :data:`MAX_YAML_NODES`
    expanded nodes; the loader is disposed of."""
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _parse_with_libyaml(text: str) -> Any:
    """The document parsed by libyaml (several times faster than the pure-Python parser)."""
    _check_events(text)
    return _single_document(_CSafeLoaderWithTags(text))


def parse_yaml_text(text: str, source: str | os.PathLike = "<string>") -> Any:
    """Parse YAML text safely (no object construction), keeping ``!Tag`` names as ``_tag``.

    Documents nested deeper than :data:`MAX_YAML_DEPTH`, expanding (through aliases) to more
    than :data:`MAX_YAML_NODES` nodes, or holding a recursive alias raise :class:`InputError`.
    libyaml parses when it is installed; a document it refuses is parsed again by the
    pure-Python parser, whose messages name the problem.
    """
    if _CSafeLoaderWithTags is not None:
        try:
            return _parse_with_libyaml(text)
        except (yaml.YAMLError, _YamlLimit, ValueError, OverflowError):
            pass
    try:
        return _single_document(_SafeLoaderWithTags(text))
    except _YamlLimit as exc:
        raise InputError(source, None, f"YAML at {exc.where} {exc.message}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, None, f"invalid YAML at {_mark(mark)}: {problem}") from None
    except (ValueError, OverflowError) as exc:   # e.g. an integer longer than Python's digit limit
        raise InputError(source, None, f"invalid YAML value: {str(exc).splitlines()[0]}") from None


def parse_json_text(text: str, source: str | os.PathLike = "<string>") -> Any:
    """Parse JSON text; bad syntax or too deep nesting raises :class:`InputError`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(source, None, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(source, None, "JSON nested too deeply (beyond Python's recursion limit)") from None
    except ValueError as exc:   # e.g. an integer longer than Python's digit limit
        raise InputError(source, None, f"invalid JSON value: {str(exc).splitlines()[0]}") from None


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """A UTF-8 text file's contents; a missing or unreadable file raises :class:`InputError`."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(p, None, f"{what} not found") from None
    except IsADirectoryError:
        raise InputError(p, None, f"expected a {what}, found a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(p, None, f"cannot read {what} ({exc})") from None


def load_yaml(path: str | os.PathLike) -> Any:
    """Load one YAML file safely; a missing file or bad syntax raises :class:`InputError`."""
    return parse_yaml_text(read_text(path), path)


def dump_yaml(data: Any) -> str:
    """Serialize plain data to block-style YAML with keys in insertion order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then rename).

    The file gets the permissions a plain ``open(path, "w")`` would (0666 minus the umask),
    not the private 0600 of the temporary file.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(text, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def require(mapping: Any, key: str, source: str | os.PathLike, path: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """Return ``mapping[key]``, raising :class:`InputError` if it is missing or of the wrong type.

    ``path`` is the dotted key path of ``mapping`` itself, used in the message.
    """
    full = f"{path}.{key}" if path else key
    if not isinstance(mapping, dict):
        raise InputError(source, path or "<top>", f"expected a mapping, got {type(mapping).__name__}")
    if key not in mapping:
        raise InputError(source, full, "missing required key")
    value = mapping[key]
    if kind is not None and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InputError(source, full, f"expected {_kind_name(kind)}, got {type(value).__name__} {value!r}")
    return value


def as_list(value: Any, source: str | os.PathLike, key: str) -> list:
    """A YAML list (``None``/missing -> ``[]``); anything else raises :class:`InputError`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(source, key, f"expected a list, got {type(value).__name__} {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_int(value: Any, source: str | os.PathLike, key: str, minimum: int | None = None,
           maximum: int | None = None) -> int:
    """Coerce a YAML scalar to int; non-integers, NaN/inf and values outside
    [``minimum``, ``maximum``] raise :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(source, key, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        number = value
    else:
        try:
            as_float = float(value)
        except ValueError:
            raise InputError(source, key, f"expected an integer, got {value!r}") from None
        if not math.isfinite(as_float) or not as_float.is_integer():
            raise InputError(source, key, f"expected an integer, got {value!r}")
        number = int(as_float)
    _check_range(number, source, key, minimum, maximum, "an integer")
    return number


def as_float(value: Any, source: str | os.PathLike, key: str, minimum: float | None = None,
             maximum: float | None = None) -> float:
    """Coerce a YAML scalar to a finite float; NaN, inf and values outside [``minimum``,
    ``maximum``] raise :class:`InputError`."""
    if isinstance(value, bool):
        raise InputError(source, key, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(source, key, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(source, key, f"expected a finite number, got {value!r}")
    _check_range(number, source, key, minimum, maximum, "a number")
    return number


def _check_range(number: float, source: str | os.PathLike, key: str, minimum: float | None, maximum: float | None,
                 what: str) -> None:
    if minimum is not None and maximum is not None and not minimum <= number <= maximum:
        raise InputError(source, key, f"expected {what} in [{_num(minimum)}, {_num(maximum)}], got {_num(number)}")
    if minimum is not None and number < minimum:
        raise InputError(source, key, f"expected {what} >= {_num(minimum)}, got {_num(number)}")
    if maximum is not None and number > maximum:
        raise InputError(source, key, f"expected {what} <= {_num(maximum)}, got {_num(number)}")


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _kind_name(kind: type | tuple[type, ...] | None) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    kinds: Iterable[type] = kind if isinstance(kind, tuple) else (kind,)  # type: ignore[assignment]
    return " or ".join(names.get(k, k.__name__) for k in kinds)
