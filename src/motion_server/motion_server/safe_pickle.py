"""Load GMR/GMT motion pickles without letting them run code.

``pickle.load`` calls whatever callable a file names (``os.system`` is one opcode away). This loader
resolves only the handful of globals that plain containers and numpy arrays need; any other global is
refused before it is imported, so a hostile file fails with an error instead of executing.
"""

from __future__ import annotations

import io
import pickle

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


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references something other than plain containers and numpy arrays."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            if module.startswith("numpy.core."):  # numpy 1.x pickles; numpy 2 names it numpy._core
                module = "numpy._core." + module[len("numpy.core."):]
            return super().find_class(module, name)
        hint = _HINTS.get(module.split(".")[0], "only dicts/lists of numbers and numpy arrays are allowed")
        raise UnsafePickleError(f"refused to load '{module}.{name}' from the pickle ({hint}); "
                                "the file may try to run code and was not executed")

    def persistent_load(self, pid):
        raise UnsafePickleError("refused a persistent id in the pickle (not a plain motion pickle)")


def safe_load(data: bytes):
    """Unpickle ``data`` allowing only containers, numbers, strings and numpy arrays."""
    return _RestrictedUnpickler(io.BytesIO(data)).load()
