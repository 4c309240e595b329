"""Quaternion helpers, vectorised over leading axes. Convention: scalar first (w, x, y, z), unit norm,
Hamilton product, active rotations (``rotate(q, v)`` turns a body-frame vector into the world frame).

Importers convert xyzw inputs once at the boundary; nothing past an importer sees xyzw.
"""

from __future__ import annotations

import numpy as np


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.asarray(q)[..., [3, 0, 1, 2]]


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    return np.asarray(q)[..., [1, 2, 3, 0]]


def normalize(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b (apply b, then a)."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def make_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 so consecutive quaternions lie in the same hemisphere (q and -q are the
    same rotation; interpolation and finite differences need the short way round)."""
    q = np.array(q, dtype=np.float64, copy=True)
    if len(q) < 2:
        return q
    dots = np.einsum("ij,ij->i", q[1:], q[:-1])
    flips = np.concatenate([[False], np.cumsum(dots < 0) % 2 == 1])
    q[flips] *= -1.0
    return q


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation from a to b (..., 4) at fractions t (...,), the short way round."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0.0, -b, b)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    small = sin_theta < 1e-9  # nearly identical: linear interpolation is exact to rounding
    safe = np.where(small, 1.0, sin_theta)
    wa = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    wb = np.where(small, t, np.sin(t * theta) / safe)
    return normalize(wa * a + wb * b)


def log_map(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, rad) of unit quaternions, angle in [0, pi]."""
    q = np.where(q[..., :1] < 0.0, -q, q)
    vec = q[..., 1:]
    sin_half = np.linalg.norm(vec, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., :1])
    # angle / sin(angle/2) -> 2 as the angle -> 0
    scale = np.where(sin_half < 1e-12, 2.0, angle / np.where(sin_half < 1e-12, 1.0, sin_half))
    return vec * scale


def exp_map(rotvec: np.ndarray) -> np.ndarray:
    """Unit quaternion of a rotation vector (axis * angle, rad)."""
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle -> 0.5 as the angle -> 0
    k = np.where(angle < 1e-12, 0.5, np.sin(half) / np.where(angle < 1e-12, 1.0, angle))
    return np.concatenate([np.cos(half), rotvec * k], axis=-1)


def yaw(q: np.ndarray) -> np.ndarray:
    """Heading angle (rad) about world z of the body x axis."""
    w, x, y, z = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def from_yaw(yaw_rad: np.ndarray | float) -> np.ndarray:
    half = 0.5 * np.asarray(yaw_rad, dtype=np.float64)
    zeros = np.zeros_like(half)
    return np.stack([np.cos(half), zeros, zeros, np.sin(half)], axis=-1)


def world_angular_velocity(q: np.ndarray, dt_s: float) -> np.ndarray:
    """World-frame angular velocity (rad/s) of a sampled orientation track (T, 4), central differences
    inside, one-sided at the ends (same stencil as ``np.gradient``)."""
    q = make_continuous(q)
    if len(q) < 2:
        return np.zeros((len(q), 3))
    # q_next ⊗ q_prev^-1 is the world-frame rotation over the stencil's time span.
    prev = np.concatenate([q[:1], q[:-2], q[-2:-1]])
    nxt = np.concatenate([q[1:2], q[2:], q[-1:]])
    span = np.full(len(q), 2.0 * dt_s)
    span[0] = span[-1] = dt_s
    return log_map(multiply(nxt, conjugate(prev))) / span[:, None]
