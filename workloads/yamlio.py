"""Safe YAML input/output and the user-facing input error shared by every bitloop package.

Every reader in bitloop reports a bad input as an :class:`InputError` that names the
file, the key path inside it and what was expected; the CLI prints it as one line and
exits with status 2. Keys are normalized so that Timeloop's hyphenated spellings
(``read-write``, ``data-spaces``) and underscored ones are the same.
"""

from __future__ import annotations

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
        self.source = str(source) if source is not None else "<input>"
        self.key = key or ""
        self.expected = expected
        where = f"{self.source}: {self.key}: " if self.key else f"{self.source}: "
        super().__init__(f"{where}{expected}")

    def __reduce__(self) -> tuple:
        # Rebuild from the constructor's arguments so the error crosses process boundaries intact.
        return (InputError, (self.source, self.key or None, self.expected))


# libyaml's C parser when PyYAML was built with it (about 10x faster), else the pure-Python one;
# both construct only plain data (safe loading).
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SafeLoaderWithTags(_SafeBase):  # type: ignore[misc, valid-type]
    """SafeLoader that keeps Timeloop v0.4 tags (``!Component``...) as a ``_tag`` key."""


def _tagged_mapping(loader: Any, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        data = loader.construct_mapping(node, deep=True)
        data["_tag"] = tag_suffix
        return data
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_SafeLoaderWithTags.add_multi_constructor("!", _tagged_mapping)


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


def parse_yaml_text(text: str, source: str | os.PathLike = "<string>") -> Any:
    """Parse YAML text safely (no object construction), keeping ``!Tag`` names as ``_tag``."""
    try:
        return yaml.load(text, Loader=_SafeLoaderWithTags)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, None, f"invalid YAML at {where}: {problem}") from None


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


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(text, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
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


def as_int(value: Any, source: str | os.PathLike, key: str, minimum: int | None = None) -> int:
    """Coerce a YAML scalar to int, with a clear error for non-integers or values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(source, key, f"expected an integer, got {value!r}")
    try:
        as_float = float(value)
    except ValueError:
        raise InputError(source, key, f"expected an integer, got {value!r}") from None
    if not as_float.is_integer():
        raise InputError(source, key, f"expected an integer, got {value!r}")
    number = int(as_float)
    if minimum is not None and number < minimum:
        raise InputError(source, key, f"expected an integer >= {minimum}, got {number}")
    return number


def as_float(value: Any, source: str | os.PathLike, key: str, minimum: float | None = None) -> float:
    """Coerce a YAML scalar to float with a clear error."""
    if isinstance(value, bool):
        raise InputError(source, key, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(source, key, f"expected a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise InputError(source, key, f"expected a number >= {minimum}, got {number}")
    return number


def _kind_name(kind: type | tuple[type, ...] | None) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    kinds: Iterable[type] = kind if isinstance(kind, tuple) else (kind,)  # type: ignore[assignment]
    return " or ".join(names.get(k, k.__name__) for k in kinds)
