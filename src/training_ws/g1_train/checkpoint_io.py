"""Reading training checkpoints without running code.

``torch.load(weights_only=False)`` unpickles whatever a ``.pt`` file holds, and unpickling can call any
function (a checkpoint downloaded or shared is a program). Every checkpoint this workspace reads goes
through :func:`load_checkpoint`, which uses torch's weights-only unpickler: tensors, state dicts and the
plain containers and numbers of an optimiser state. That is all an rsl-rl checkpoint holds
(``*_state_dict``, ``optimizer_state_dict``, ``iter``, ``infos=None``), so no allow-list is needed; a file
that needs more is refused with :class:`CheckpointError` before anything in it runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as weights only (it may try to run code)."""


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict:
    """The checkpoint at ``path`` as a dict, read with ``torch.load(weights_only=True)``."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()
        detail = next((line.strip() for line in reason if "Unsupported" in line or "global" in line.lower()),
                      reason[0] if reason else type(exc).__name__)
        raise CheckpointError(
            f"{path}: refused to load: it holds more than tensors and plain containers ({detail}); unpickling it "
            "could run code, so nothing in it was executed. Use checkpoints written by g1-train (rsl-rl state "
            "dicts), or re-save a trusted one as state dicts only") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a training checkpoint (a {type(state).__name__}, expected a dict of "
                              "state dicts)")
    return state


class WeightsOnlyLoad:
    """Mixin for rsl-rl runners: ``load`` reads the file with :func:`load_checkpoint` (rsl-rl 5.5's own
    ``load`` calls ``torch.load(weights_only=False)``), then hands it to the algorithm as rsl-rl does."""

    def load(self, path: str, load_cfg: dict | None = None, strict: bool = True,
             map_location: str | None = None) -> dict | None:
        loaded = load_checkpoint(path, map_location=map_location)
        if self.alg.load(loaded, load_cfg, strict):
            self.current_learning_iteration = loaded["iter"]
        return loaded.get("infos")
