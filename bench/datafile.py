"""Reading the files a user hands bench (suites, catalogue, environments, compose files, the
reference): defensively, so that a bad file is a one-line ConfigError naming it, never a
traceback, a hang or a giant message.

- a size limit before anything is parsed (a data file here is a few KB);
- UTF-8 only, with the offset of the first bad byte (and a hint for UTF-16, which editors on
  other systems write);
- YAML's safe loader refusing a key given twice in one mapping (YAML says keys are unique;
  PyYAML keeps the last silently, so a suite's second `repetitions:` would win unseen), then a budget on the document's size *as expanded*: aliases share one
  object, so a 400-byte "billion laughs" loads at once and explodes later in whatever walks it
  (validation, json.dumps); counting the values an alias stands for catches it here;
- every quotation of the input in an error cut to a short excerpt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .text import EXCERPT, excerpt, shown  # noqa: F401 -- how every quotation of the input is cut

MAX_BYTES = 1 << 20          # 1 MiB: the largest file of workloads/ is ~20 KB
MAX_VALUES = 100_000         # scalars, lists and mappings, counted as expanded


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: larger than {max_bytes // 1024} KB: not a bench data file")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ConfigError(f"{path}: UTF-16 text: save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}): "
                          f"save it as UTF-8") from None
    return text.removeprefix("\ufeff")   # a UTF-8 byte order mark is harmless


class DuplicateKey(yaml.MarkedYAMLError):
    pass


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, with a mapping's key given twice an error at that key's line. libyaml's
    parser where PyYAML has it (Debian's and PyPI's wheels do): five times as fast as PyYAML's
    own, which every command spent a tenth of a second in reading the catalogue."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):   # before merges are flattened: `<<: *alias` may override
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:   # an unhashable key: the base class says so
                    break
                if duplicate:
                    raise DuplicateKey(None, None, f"key {shown(str(key), 60)!s} given twice in one mapping",
                                       key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    """The document of a YAML file, checked as the module says."""
    text = read_text(path, max_bytes)
    try:
        doc = yaml.load(text, Loader=UniqueKeyLoader)   # noqa: S506 -- a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}:{line}: not valid YAML: {shown(problem, 120)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a bench data file") from None
    check_size(doc, path)
    return doc


def check_size(doc: Any, path: Path, budget: int = MAX_VALUES) -> None:
    """Refuse a document that holds more than `budget` values once its aliases are expanded."""
    seen, stack = 0, [doc]
    while stack:
        value = stack.pop()
        seen += 1
        if seen > budget:
            raise ConfigError(f"{path}: expands to more than {budget:,} values (YAML aliases that repeat "
                              f"each other?): not a bench data file")
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
