"""The motion library: a directory of motion ``.npz`` files plus ``index.json``.

Layout::

    <library>/index.json          {"format_version": 1, "motions": {name: {file, duration_s, fps, ...}}}
    <library>/<name>.npz          one motion each (format: motion.py / README.md)

Location: ``--library`` flag > ``$G1_MOTION_LIBRARY`` > ``~/.local/share/g1_tracker/motions``.
Every write goes to a temporary file that is renamed into place, and index updates hold an exclusive
lock, so a failed import or two concurrent importers never leave a corrupt library behind.

The library never reads or writes outside its directory: a motion name must be usable as a plain file
name (no path separators, no leading dot), and an index entry whose ``file`` is not a plain ``.npz`` file
name in the directory is refused when loaded or removed. An index that is valid JSON but not shaped as
above is refused with a :class:`LibraryError` (an unreadable one is rebuilt from the ``.npz`` files).
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import fnmatch
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .motion import Motion, MotionFormatError, load_motion, save_motion, write_atomic

ENV_VAR = "G1_MOTION_LIBRARY"
DEFAULT_PATH = Path("~/.local/share/g1_tracker/motions")
INDEX_FILE = "index.json"
INDEX_VERSION = 1


def default_library_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH).expanduser()


class LibraryError(MotionFormatError):
    """The library cannot be used as it is: a motion name that is not a plain file name, an index entry
    pointing outside the library, a malformed index.json. The message says which and what to do."""


def check_motion_name(name: str) -> str:
    """``name`` if it can be a library file name (``<name>.npz`` in the library directory), else LibraryError."""
    problem = None
    if not isinstance(name, str) or not name.strip():
        problem = "is empty"
    elif any(c in name for c in "/\\\0"):
        problem = "contains a path separator or NUL"
    elif name.startswith("."):
        problem = "starts with '.' (hidden and temporary files of the library start so)"
    elif len(name.encode()) > 200:
        problem = "is longer than 200 bytes"
    if problem:
        raise LibraryError(f"motion name {name!r} {problem}: a name becomes the file <name>.npz inside the "
                           "library; use letters, digits, '_', '-' and '.' (e.g. `--name my_clip`)")
    return name


class UnknownMotionError(KeyError):
    """No motion of that name in the library (the message suggests close names)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class MotionEntry:
    name: str
    file: str
    duration_s: float
    fps: float
    num_frames: int
    source_file: str
    license: str

    @classmethod
    def of(cls, motion: Motion, file: str) -> "MotionEntry":
        return cls(motion.name, file, motion.duration_s, motion.fps, motion.num_frames,
                   str(motion.provenance.get("source_file", "")), str(motion.provenance.get("license", "")))


class MotionLibrary:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root else default_library_path()
        self._cache: dict[str, tuple[float, Motion]] = {}  # name -> (file mtime, motion)

    # --- reading ---
    def entries(self) -> dict[str, MotionEntry]:
        """Index entries by name; rebuilt from the .npz files when index.json is missing or unreadable.
        Raises LibraryError for an index that is JSON but not a library index."""
        index = self.root / INDEX_FILE
        if not index.is_file():
            return self._scan() if self.root.is_dir() else {}
        try:
            data = json.loads(index.read_text())
        except (OSError, ValueError):
            return self._scan()
        motions = data.get("motions") if isinstance(data, dict) else None
        fields = set(MotionEntry.__dataclass_fields__)
        bad = (f"'motions' is {type(motions).__name__}, expected an object {{name: entry}}"
               if not isinstance(motions, dict) else
               next((f"entry {n!r} is not an object with the fields {sorted(fields)}"
                     for n, e in motions.items() if not isinstance(e, dict) or not fields <= set(e)), None))
        if bad:
            raise LibraryError(f"{index}: not a motion library index ({bad}); delete it to have it rebuilt "
                               "from the .npz files, or re-import the motions")
        return {name: MotionEntry(**{f: entry[f] for f in fields}) for name, entry in motions.items()}

    def names(self, pattern: str = "") -> list[str]:
        names = sorted(self.entries())
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names

    def load(self, name: str) -> Motion:
        """The motion ``name`` (cached until its file changes). Raises UnknownMotionError or
        MotionFormatError."""
        entry = self.entries().get(name)
        if entry is None:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see `g1 motions list`"
            raise UnknownMotionError(f"no motion named {name!r} in the library {self.root}{hint}")
        path = self._file_of(entry)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise MotionFormatError(f"{path}: listed in {INDEX_FILE} but missing; re-import it") from None
        cached = self._cache.get(name)
        if cached and cached[0] == mtime:
            return cached[1]
        motion = load_motion(path)
        self._cache[name] = (mtime, motion)
        return motion

    # --- writing ---
    def _file_of(self, entry: MotionEntry) -> Path:
        """The entry's file, which must be a plain .npz file name inside the library directory."""
        file = entry.file
        if (not isinstance(file, str) or Path(file).name != file or file in ("", ".", "..")
                or not file.endswith(".npz") or "\\" in file):
            raise LibraryError(f"{self.root / INDEX_FILE}: entry {entry.name!r} names the file {file!r}, "
                               "which is outside the library (only plain .npz file names in the library "
                               "directory are allowed); refused. Fix or delete the index (it is rebuilt "
                               "from the .npz files)")
        return self.root / file

    def add(self, motion: Motion) -> Path:
        """Store ``motion`` (replacing one of the same name) and update the index, both atomically."""
        file = f"{check_motion_name(motion.name)}.npz"
        with self._locked():
            save_motion(motion, self.root / file)
            entries = self.entries()
            entries[motion.name] = MotionEntry.of(motion, file)
            self._write_index(entries)
        self._cache.pop(motion.name, None)
        return self.root / file

    def remove(self, name: str) -> None:
        with self._locked():
            entries = self.entries()
            entry = entries.pop(name, None)
            if entry is None:
                raise UnknownMotionError(f"no motion named {name!r} in the library {self.root}")
            path = self._file_of(entry)
            self._write_index(entries)
            path.unlink(missing_ok=True)

    def _write_index(self, entries: dict[str, MotionEntry]) -> None:
        payload = {"format_version": INDEX_VERSION,
                   "motions": {n: e.__dict__ for n, e in sorted(entries.items())}}
        write_atomic(self.root / INDEX_FILE, lambda f: f.write(json.dumps(payload, indent=1).encode()))

    @contextlib.contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _scan(self) -> dict[str, MotionEntry]:
        entries = {}
        for path in sorted(self.root.glob("*.npz")):
            try:
                motion = load_motion(path)
            except MotionFormatError:
                continue  # not ours or damaged: `g1 motions list` must still work
            entries[motion.name] = MotionEntry.of(motion, path.name)
        return entries
