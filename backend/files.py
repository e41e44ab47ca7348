"""Files appear whole or not at all: every artifact tinyattn writes goes through here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path | str, parents: bool = False) -> Iterator[Path]:
    """A fresh path next to `path` for the block to create (so the file gets the permissions
    its writer gives it, an executable's included); renamed over `path` when the block
    succeeds, removed otherwise. `parents` creates missing directories first."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield scratch
        scratch.replace(path)
    finally:
        scratch.unlink(missing_ok=True)


def write_atomically(path: Path | str, text: str) -> None:
    """Write `text` to `path` whole, or leave `path` as it was."""
    with atomic_path(path) as scratch:
        scratch.write_text(text)
