"""Files appear whole or not at all: every artifact tinyattn writes goes through here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path | str, parents: bool = False) -> Iterator[Path]:
    """A fresh path next to `path` for the block to create (so the file gets the permissions
    its writer gives it, an executable's included); renamed over `path` when the block
    succeeds, removed otherwise. An OSError about the scratch names `path` instead. `parents`
    creates missing directories first."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield scratch
        scratch.replace(path)
    except OSError as error:  # name the user's path, not the scratch one
        if error.filename is None or Path(error.filename) not in (scratch, path):
            raise
        raise OSError(error.errno, error.strerror, str(path)) from None
    finally:
        scratch.unlink(missing_ok=True)


def write_atomically(path: Path | str, text: str) -> None:
    """Write `text` to `path` whole, or leave `path` as it was."""
    with atomic_path(path) as scratch:
        scratch.write_text(text)


def write_bytes_atomically(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` whole, or leave `path` as it was."""
    with atomic_path(path) as scratch:
        scratch.write_bytes(data)


def write_all_atomically(files: Mapping[Path | str, str]) -> None:
    """Write each text to its path whole; if any cannot be written, none appears."""
    with ExitStack() as stack:
        scratches = {stack.enter_context(atomic_path(path)): text for path, text in files.items()}
        for scratch, text in scratches.items():
            scratch.write_text(text)
