"""Load GMR/GMT motion pickles without letting them run code or exhaust memory.

``pickle.load`` calls whatever callable a file names (``os.system`` is one opcode away). This loader
resolves only the handful of globals that plain containers and numpy arrays need; any other global is
refused before it is imported, so a hostile file fails with an error instead of executing.

Allowed constructors can still be asked for huge objects by a tiny file (``bytearray(2**30)`` is 30
bytes of pickle; ``list(big)`` repeated from the memo multiplies memory), and numpy reads past the end
of an object array's data when its state is shorter than its shape. So every call the file makes is
sized before it is made and charged to a budget proportional to the file (:data:`BASE_BUDGET_BYTES` +
:data:`BUDGET_PER_FILE_BYTE` per byte), and array states are checked before numpy sees them. The
unpickler is Python's own (``pickle._Unpickler``), whose opcodes can be intercepted; motion pickles
hold a few large arrays, so the slower opcode loop costs little.
"""

from __future__ import annotations

import codecs
import collections
import io
import math
import pickle

import numpy as np
from numpy._core.multiarray import _reconstruct as _RECONSTRUCT
from numpy._core.multiarray import scalar as _SCALAR

#: (module, name) pairs a motion pickle may reference: numpy array/scalar reconstruction and plain
#: builtin containers. numpy moved ``core`` to ``_core`` in 2.0; both spellings occur in the wild.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # protocol 2 stores bytes as encode(str, "latin1"): a pure function
    *(("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "float", "int",
                                       "str", "bytes", "bytearray", "complex", "bool")),
    *(("numpy", name) for name in ("float64", "float32", "int64", "int32", "bool_")),
}
_HINTS = {
    "joblib": "joblib.dump files are not supported; load it in a trusted Python and re-save with "
              "pickle or np.savez",
    "torch": "torch tensors are not supported; convert them to numpy arrays before saving",
}

#: Memory the calls of one pickle may ask for: this much, plus BUDGET_PER_FILE_BYTE per byte of the file
#: (a plain pickle of arrays asks for about its own size again; 8x leaves room for lists of numbers).
BASE_BUDGET_BYTES = 64 * 2**20
BUDGET_PER_FILE_BYTE = 8
_POINTER_BYTES = 8  # one list/tuple slot
_HASHED_SLOT_BYTES = 64  # one set/dict entry, generously


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references something other than plain containers and numpy arrays, or asks for more
    memory than its size can justify."""


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def _dtype_itemsize(dtype) -> int:
    try:
        return int(np.dtype(dtype).itemsize)
    except (TypeError, ValueError):
        return 0  # numpy will refuse it itself, allocating nothing


def _shape_elements(shape) -> int:
    if isinstance(shape, int):
        return max(shape, 0)
    if isinstance(shape, (tuple, list)) and all(isinstance(s, int) for s in shape):
        return math.prod(max(s, 0) for s in shape)
    return 0  # not a shape: numpy refuses it


def _sized(obj) -> int:
    try:
        return len(obj)
    except TypeError:
        return 0


def _request_bytes(func, args: tuple) -> int:
    """The memory a call of an allowed constructor will take, from its arguments, before it is made."""
    first = args[0] if args else None
    if func in (bytearray, bytes):
        return first if isinstance(first, int) else _sized(first)
    if func is np.ndarray:
        return _shape_elements(first) * (_dtype_itemsize(args[1]) if len(args) > 1 else 8)
    if func is _RECONSTRUCT:
        return _shape_elements(args[1]) * _dtype_itemsize(args[2]) if len(args) >= 3 else 0
    if func is _SCALAR:
        return _dtype_itemsize(first)
    if func is codecs.encode:
        return 4 * _sized(first)  # at most 4 bytes per character
    if func in (set, frozenset, dict, collections.OrderedDict):
        return _HASHED_SLOT_BYTES * _sized(first)
    return _POINTER_BYTES * _sized(first)  # list, tuple, numpy scalar types given a sequence (-> array)


class _RestrictedUnpickler(pickle._Unpickler):
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.file_bytes = len(data)
        self.budget = BASE_BUDGET_BYTES + BUDGET_PER_FILE_BYTE * len(data)
        self.requested = 0

    def find_class(self, module: str, name: str):
        if module == "__builtin__":  # protocol 0-2 pickles name the builtins module as Python 2 did
            module = "builtins"
        if (module, name) in _ALLOWED_GLOBALS:
            if module.startswith("numpy.core."):  # numpy 1.x pickles; numpy 2 names it numpy._core
                module = "numpy._core." + module[len("numpy.core."):]
            return super().find_class(module, name)
        hint = _HINTS.get(module.split(".")[0], "only dicts/lists of numbers and numpy arrays are allowed")
        raise UnsafePickleError(f"refused to load '{module}.{name}' from the pickle ({hint}); "
                                "the file may try to run code and was not executed")

    def persistent_load(self, pid):
        raise UnsafePickleError("refused a persistent id in the pickle (not a plain motion pickle)")

    # --- every opcode that calls something goes through _call ---
    def _call(self, func, args: tuple, kwargs: dict | None = None, new: bool = False):
        need = _request_bytes(func, args)
        if self.requested + need > self.budget:
            what = getattr(func, "__qualname__", repr(func))
            raise UnsafePickleError(
                f"refused: the pickle asks {what}() for {_mib(need)} (after {_mib(self.requested)} already), "
                f"more than the {_mib(self.budget)} a {self.file_bytes}-byte motion pickle may need; "
                "the file is damaged or hostile and was not loaded")
        self.requested += need
        if new:
            return func.__new__(func, *args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], tuple(args))
    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, tuple(args), new=True))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, tuple(args), dict(kwargs), new=True))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _instantiate(self, klass, args):  # INST and OBJ (protocol 0/1)
        self.append(self._call(klass, tuple(args)))

    def load_build(self):
        if isinstance(self.stack[-2], np.ndarray):
            _check_array_state(self.stack[-1])
        super().load_build()
    dispatch[pickle.BUILD[0]] = load_build


def _check_array_state(state) -> None:
    """numpy's ndarray.__setstate__ checks the data length of plain arrays but not of object arrays: a
    list shorter than the shape makes it read past the list (garbage objects, or a crash)."""
    if not (isinstance(state, tuple) and len(state) in (4, 5)):
        return  # numpy refuses a malformed state itself
    shape, dtype, data = state[-4], state[-3], state[-1]
    if isinstance(dtype, np.dtype) and dtype.hasobject:
        n = _shape_elements(shape)
        if not isinstance(data, list) or len(data) != n:
            raise UnsafePickleError(f"refused: an object array of shape {shape} comes with "
                                    f"{_sized(data)} values; the file is damaged or hostile and was not loaded")


def safe_load(data: bytes):
    """Unpickle ``data`` allowing only containers, numbers, strings and numpy arrays, within a memory
    budget proportional to its size. Raises UnsafePickleError (or another UnpicklingError/ValueError
    for a damaged file)."""
    return _RestrictedUnpickler(data).load()
