"""Which clip segment an environment plays next: GMT adaptive sampling + HME-style balancing.

Segments (GMT): clips longer than ``max_segment_s`` are cut into sub-clips whose cut points move by a
random offset of up to ``max_offset_s``; the cut is redone every ``recut_every_resets`` resets so that
no frame is always at a segment start. Each *clip* keeps its adaptive state (segments of a clip share
it; cutting is about episode length, difficulty is a property of the motion).

Adaptive sampling (GMT, formulas from field-notes.md), per clip i:
    completion level  c_i: starts at 10, c_i <- max(1, 0.99 c_i) after each successful episode
    error threshold   e_i = 0.25 + (0.6 - 0.25) (c_i - 1) / 9      (termination threshold in metres
                      on the worst key-body error; loose while a clip is new, tight once mastered)
    sampling level    s_i = c_i                      if c_i > 1
                      s_i = min((E_max_kp,i / 0.15)^5, 1)  otherwise (mastered clips are resampled only
                      in proportion to how badly they are still tracked)
    p_i ∝ s_i * b_i   with b_i the diversity balance below.

Start times (``start_sampling``): ``segments`` (GMT) starts every episode at a segment's first frame;
``adaptive`` (mjlab-style) starts it anywhere in the clip: each clip is split into bins of
``start_bin_s``, every failed episode counts in the bin where it failed (an exponential moving
average: all counts decay by (1 - alpha) per update, a failure adds alpha), and the bin of the next start
is drawn from
    p = (1 - u) * f / sum(f) + u / B        (u = start_uniform_ratio; uniform while f = 0)
smeared backwards by the kernel lambda^k, k = 0..K-1 (``start_kernel_size``, ``start_kernel_lambda``):
    p'_b ∝ sum_k lambda^k p_{min(b+k, B-1)}
so episodes start in and shortly before the parts of a clip where the policy falls; the frame is uniform
within the bin. An episode lasts until the clip's end or ``max_segment_s``. Stand-start clips always
start at their first frame (standing still: the deployment start is their point).

HME-style diversity balancing (our formulation): every clip gets a motion embedding
    z_i = standardise([mean, std of joint positions, mean |joint velocity|, mean root speed,
                       mean |yaw rate|, std root height])
and the clips are grouped by k-means on z (k = ``diversity_clusters``, deterministic seeding). The
balance weight b_i = (1 / |cluster(i)|)^w makes every cluster of similar motions equally likely a
priori, so a library with 40 dances and 3 kicks does not starve the kicks. w = 0 switches it off.
"""

from __future__ import annotations

import numpy as np

from .config import SamplingCfg
from .motions import MotionSet

START_SAMPLING = ("segments", "adaptive")


def motion_embedding(motions: MotionSet) -> np.ndarray:
    """(C, E) standardised descriptor per clip (see module docstring)."""
    feats = []
    for s, n in zip(motions.start, motions.length):
        sl = slice(s, s + n)
        q, dq = motions.joint_pos[sl], motions.joint_vel[sl]
        feats.append(np.concatenate([
            q.mean(0), q.std(0), np.abs(dq).mean(0),
            [np.linalg.norm(motions.root_lin_vel[sl, :2], axis=1).mean(),
             np.abs(motions.root_ang_vel[sl, 2]).mean(), motions.root_pos[sl, 2].std()]]))
    z = np.asarray(feats, dtype=np.float64)
    return (z - z.mean(0)) / (z.std(0) + 1e-6)


def kmeans(z: np.ndarray, k: int, iters: int = 50) -> np.ndarray:
    """Deterministic k-means (farthest-point seeding); returns a cluster label per row."""
    k = max(1, min(k, len(z)))
    centers = [z[0]]
    for _ in range(1, k):
        d = np.min([((z - c) ** 2).sum(1) for c in centers], axis=0)
        centers.append(z[int(np.argmax(d))])
    c = np.array(centers)
    labels = np.zeros(len(z), dtype=np.int64)
    for _ in range(iters):
        labels = np.argmin(((z[:, None] - c[None]) ** 2).sum(-1), axis=1)
        new = np.array([z[labels == j].mean(0) if np.any(labels == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return labels


class AdaptiveSampler:
    """Segments + per-clip GMT state; all arrays numpy, sizes = number of clips / segments."""

    def __init__(self, motions: MotionSet, cfg: SamplingCfg, rng: np.random.Generator, control_dt: float):
        self.cfg = cfg
        self.rng = rng
        self.dt = control_dt
        self.motions = motions
        n = motions.num_clips
        self.completion = np.full(n, cfg.completion_init)
        self.max_kp_error = np.ones(n)  # worst key-body error of the last episode (m)
        labels = kmeans(motion_embedding(motions), cfg.diversity_clusters) if n > 1 else np.zeros(1, np.int64)
        self.cluster = labels
        sizes = np.bincount(labels)[labels].astype(np.float64)
        self.balance = (1.0 / sizes) ** cfg.diversity_weight
        self.resets_since_cut = 0
        self.cut_segments()
        if cfg.start_sampling not in START_SAMPLING:
            raise ValueError(f"sampling.start_sampling {cfg.start_sampling!r}: expected one of {START_SAMPLING}")
        # adaptive start times: bins of start_bin_s per clip, flat arrays (bin_start[c] = first bin of clip c)
        bin_len = max(1, int(round(cfg.start_bin_s / control_dt)))
        self.bin_frames = bin_len
        self.num_bins = np.maximum(1, -(-(motions.length - 1) // bin_len)).astype(np.int64)
        self.bin_start = np.concatenate([[0], np.cumsum(self.num_bins)[:-1]]).astype(np.int64)
        self.bin_failed = np.zeros(int(self.num_bins.sum()))
        from .motions import STAND_START_SUFFIX

        self.fixed_start = np.array([n.endswith(STAND_START_SUFFIX) for n in motions.names])

    # --- segments ---------------------------------------------------------------------------------
    def cut_segments(self) -> None:
        """Cut each clip into segments of at most max_segment_s with random offsets (GMT)."""
        max_len = max(2, int(round(self.cfg.max_segment_s / self.dt)))
        max_off = int(round(self.cfg.max_offset_s / self.dt))
        clip, first, last = [], [], []
        for i, n in enumerate(self.motions.length):
            n = int(n)
            if n <= max_len:
                clip.append(i), first.append(0), last.append(n - 1)
                continue
            cuts = [0]
            while cuts[-1] + max_len < n - 1:
                nxt = cuts[-1] + max_len - int(self.rng.integers(0, max_off + 1))
                cuts.append(max(nxt, cuts[-1] + max_len // 2))
            for a, b in zip(cuts, cuts[1:] + [n - 1]):
                if b - a >= 2:
                    clip.append(i), first.append(a), last.append(b)
        self.seg_clip = np.array(clip)
        self.seg_first = np.array(first)
        self.seg_last = np.array(last)
        self.resets_since_cut = 0

    # --- GMT formulas -----------------------------------------------------------------------------
    def error_threshold(self, clip: np.ndarray) -> np.ndarray:
        c = self.completion[clip]
        return self.cfg.error_low + (self.cfg.error_high - self.cfg.error_low) * (c - 1.0) / 9.0

    def sampling_level(self) -> np.ndarray:
        c = self.completion
        mastered = np.minimum((self.max_kp_error / self.cfg.kp_err_norm) ** 5, 1.0)
        return np.where(c > 1.0, c, mastered)

    def clip_probabilities(self) -> np.ndarray:
        w = self.sampling_level() * self.balance
        w = np.maximum(w, 1e-6)
        return w / w.sum()

    def sample(self, count: int) -> np.ndarray:
        """Segment indices for ``count`` resets: a clip by p_i, then one of its segments uniformly."""
        self.resets_since_cut += count
        if self.resets_since_cut >= self.cfg.recut_every_resets:
            self.cut_segments()
        clips = self.rng.choice(len(self.completion), size=count, p=self.clip_probabilities())
        out = np.empty(count, dtype=np.int64)
        for k, c in enumerate(clips):
            segs = np.flatnonzero(self.seg_clip == c)
            out[k] = segs[self.rng.integers(0, len(segs))]
        return out

    def start_bin_probabilities(self, clip: int) -> np.ndarray:
        """Distribution over clip ``clip``'s start bins (see the module docstring)."""
        sl = slice(self.bin_start[clip], self.bin_start[clip] + self.num_bins[clip])
        f = self.bin_failed[sl]
        nb, u = f.size, self.cfg.start_uniform_ratio
        p = np.full(nb, 1.0 / nb) if f.sum() <= 0 else (1.0 - u) * f / f.sum() + u / nb
        k = max(1, int(self.cfg.start_kernel_size))
        kernel = self.cfg.start_kernel_lambda ** np.arange(k)
        padded = np.concatenate([p, np.full(k - 1, p[-1])])  # edge-replicated
        smeared = np.array([padded[b:b + k] @ kernel for b in range(nb)])
        return smeared / smeared.sum()

    def sample_episodes(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clip, first frame, last frame) of ``count`` new episodes."""
        if self.cfg.start_sampling == "segments":
            seg = self.sample(count)
            return self.seg_clip[seg], self.seg_first[seg], self.seg_last[seg]
        clips = self.rng.choice(len(self.completion), size=count, p=self.clip_probabilities())
        max_len = max(2, int(round(self.cfg.max_segment_s / self.dt)))
        first = np.zeros(count, dtype=np.int64)
        last = np.zeros(count, dtype=np.int64)
        for k, c in enumerate(clips):
            end = int(self.motions.length[c]) - 1
            if not self.fixed_start[c]:
                b = self.rng.choice(int(self.num_bins[c]), p=self.start_bin_probabilities(c))
                lo = b * self.bin_frames
                hi = min((b + 1) * self.bin_frames, end - 1)  # at least one step to play
                first[k] = lo + int(self.rng.integers(0, max(1, hi - lo)))
            last[k] = min(first[k] + max_len, end)
        return clips, first, last

    def update(self, clip: np.ndarray, success: np.ndarray, max_kp_error: np.ndarray,
               frame: np.ndarray | None = None) -> None:
        """End-of-episode statistics of some environments (arrays of equal length); ``frame`` = the clip
        frame each episode ended at (failures are counted in its start-time bin)."""
        for c, ok, e in zip(clip, success, max_kp_error):
            self.max_kp_error[c] = e
            if ok:
                self.completion[c] = max(1.0, self.completion[c] * self.cfg.completion_decay)
        if frame is not None:
            fail = ~np.asarray(success, dtype=bool)
            a = self.cfg.start_failure_alpha
            self.bin_failed *= 1.0 - a
            c, f = np.asarray(clip)[fail], np.asarray(frame)[fail]
            bins = self.bin_start[c] + np.minimum(f // self.bin_frames, self.num_bins[c] - 1)
            np.add.at(self.bin_failed, bins, a)

    # --- campaign checkpoints -----------------------------------------------------------------------
    _STATE = ("completion", "max_kp_error", "seg_clip", "seg_first", "seg_last", "bin_failed")

    def state_dict(self) -> dict:
        """The adaptive state (numpy arrays + ints; the generator is the env's and saved with it)."""
        return {**{k: getattr(self, k).copy() for k in self._STATE}, "resets_since_cut": int(self.resets_since_cut)}

    def load_state_dict(self, state: dict) -> None:
        for k in self._STATE:
            cur, new = getattr(self, k), np.asarray(state[k])
            if k in ("completion", "max_kp_error", "bin_failed") and new.shape != cur.shape:
                raise ValueError(f"sampler state {k}: shape {new.shape} != {cur.shape} (other clips?)")
            setattr(self, k, new.astype(cur.dtype, copy=True))
        self.resets_since_cut = int(state["resets_since_cut"])
