"""Policy networks as rsl-rl custom model classes (``class_name = "g1_train.models:..."``).

All networks read the deployment observation through its layout (``ObservationConfig.layout()``):

    [ proprio history (H x P) | reference frame 0 = next frame (R) | future frames 1..F-1 (F-1 x R) ]

- :class:`MotionEncoder`: the next frame goes in explicitly; the 2 s future window is read by a 1-D
  convolution over time (channels = reference terms), GMT-style.
- :class:`MotionMoE`: a gating network (softmax over K experts) mixes K expert MLPs, all fed
  [proprio | next frame | window code | privileged extras]. Used by the teacher and the MoE student.
- :class:`CausalTransformer`: GPT-style decoder over the last C observations (one token per control
  step, causal mask + front padding mask), action read at the newest token. Exported as the contract's
  ``transformer_window`` kind: the policy node keeps the same rolling context.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from rsl_rl.models import MLPModel
from rsl_rl.modules import EmpiricalNormalization
from rsl_rl.utils import resolve_class
from tensordict import TensorDict


def _mlp(sizes: list[int], act=nn.ELU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class MotionEncoder(nn.Module):
    """Reference block (B, F*R) -> [next frame (R) | conv code of the future window (out)]."""

    def __init__(self, num_frames: int, frame_size: int, channels: list[int], out: int):
        super().__init__()
        self.num_frames, self.frame_size = num_frames, frame_size
        convs: list[nn.Module] = []
        c_in, length = frame_size, num_frames - 1
        for i, c in enumerate(channels):
            stride = 2 if i > 0 and length >= 4 else 1
            convs += [nn.Conv1d(c_in, c, kernel_size=3, stride=stride, padding=1), nn.ELU()]
            length = (length + 2 - 3) // stride + 1
            c_in = c
        self.conv = nn.Sequential(*convs)
        self.proj = nn.Sequential(nn.Linear(c_in * length, out), nn.ELU())
        self.out_dim = frame_size + out

    def forward(self, ref: torch.Tensor) -> torch.Tensor:
        frames = ref.reshape(ref.shape[0], self.num_frames, self.frame_size)
        future = frames[:, 1:].transpose(1, 2)  # (B, R, F-1): time is the conv axis
        code = self.proj(self.conv(future).flatten(1))
        return torch.cat([frames[:, 0], code], dim=-1)


class MotionMoE(nn.Module):
    """x = [proprio (Hp) | reference (F*R) | extras (E)] -> output, as a gated mixture of experts."""

    def __init__(self, proprio_size: int, num_frames: int, frame_size: int, extra_size: int, output_dim: int,
                 num_experts: int, expert_hidden: list[int], gate_hidden: list[int], encoder_channels: list[int],
                 encoder_out: int):
        super().__init__()
        self.proprio_size, self.ref_size = proprio_size, num_frames * frame_size
        self.encoder = MotionEncoder(num_frames, frame_size, encoder_channels, encoder_out)
        feat = proprio_size + self.encoder.out_dim + extra_size
        self.gate = _mlp([feat, *gate_hidden, num_experts])
        self.experts = nn.ModuleList(_mlp([feat, *expert_hidden, output_dim]) for _ in range(num_experts))
        self.last_gate: torch.Tensor | None = None  # for logging expert usage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, r = self.proprio_size, self.ref_size
        feat = torch.cat([x[:, :p], self.encoder(x[:, p:p + r]), x[:, p + r:]], dim=-1)
        gate = torch.softmax(self.gate(feat), dim=-1)                       # (B, K)
        out = torch.stack([e(feat) for e in self.experts], dim=1)           # (B, K, A)
        self.last_gate = gate.detach()
        return (gate.unsqueeze(-1) * out).sum(1)


class MotionMoEModel(MLPModel):
    """rsl-rl model whose head is :class:`MotionMoE`. The first observation group must be ``policy``
    (the deployment observation, laid out as above); further groups (e.g. ``privileged``) are extras."""

    def __init__(self, obs: TensorDict, obs_groups: dict, obs_set: str, output_dim: int, *, proprio_size: int,
                 num_frames: int, frame_size: int, num_experts: int = 4, expert_hidden=(256, 128),
                 gate_hidden=(128,), encoder_channels=(32, 32), encoder_out: int = 64,
                 obs_normalization: bool = True, distribution_cfg: dict | None = None, activation: str = "elu"):
        super().__init__(obs, obs_groups, obs_set, output_dim, hidden_dims=[8], activation=activation,
                         obs_normalization=obs_normalization, distribution_cfg=distribution_cfg)
        if self.obs_groups[0] != "policy":
            raise ValueError(f"MotionMoEModel: the first observation group of '{obs_set}' must be 'policy', "
                             f"got {self.obs_groups}")
        head_out = self.distribution.input_dim if self.distribution is not None else output_dim
        extra = self.obs_dim - proprio_size - num_frames * frame_size
        if extra < 0:
            raise ValueError(f"MotionMoEModel: observation has {self.obs_dim} values, fewer than the layout's "
                             f"{proprio_size + num_frames * frame_size}")
        self.mlp = MotionMoE(proprio_size, num_frames, frame_size, extra, head_out, num_experts,
                             list(expert_hidden), list(gate_hidden), list(encoder_channels), encoder_out)


class CausalTransformer(nn.Module):
    """(B, C, D) observations, oldest first, front-padded + (B, 1) valid length -> (B, A) action."""

    def __init__(self, proprio_size: int, num_frames: int, frame_size: int, output_dim: int, context: int,
                 d_model: int, num_layers: int, num_heads: int, encoder_channels: list[int], encoder_out: int):
        super().__init__()
        self.proprio_size, self.ref_size, self.context = proprio_size, num_frames * frame_size, context
        self.encoder = MotionEncoder(num_frames, frame_size, encoder_channels, encoder_out)
        self.embed = nn.Linear(proprio_size + self.encoder.out_dim, d_model)
        self.pos = nn.Parameter(torch.zeros(1, context, d_model))
        layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward=2 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, output_dim)
        causal = torch.triu(torch.ones(context, context, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal", causal, persistent=False)
        # constants as buffers: ONNX Runtime has no bool EyeLike kernel
        self.register_buffer("not_self", ~torch.eye(context, dtype=torch.bool), persistent=False)

    def forward(self, tokens: torch.Tensor, context_len: torch.Tensor) -> torch.Tensor:
        b, c, d = tokens.shape
        flat = tokens.reshape(b * c, d)
        p, r = self.proprio_size, self.ref_size
        x = self.embed(torch.cat([flat[:, :p], self.encoder(flat[:, p:p + r])], -1)).reshape(b, c, -1) + self.pos
        # Padding: the first C - len positions hold no observation yet; they may not be attended to.
        # Positions are masked as keys only, so a padded query still sees itself (no all-masked rows).
        idx = torch.arange(c, device=tokens.device).unsqueeze(0)
        pad = idx < (c - context_len.reshape(b, 1).to(torch.long))           # (B, C) True = padding
        mask = self.causal.unsqueeze(0) | (pad.unsqueeze(1) & self.not_self.unsqueeze(0))
        mask = mask.repeat_interleave(self.blocks.layers[0].self_attn.num_heads, dim=0)
        x = self.blocks(x, mask=mask)
        return self.head(self.norm(x[:, -1]))


class CausalTransformerModel(nn.Module):
    """rsl-rl student model over the ``policy_context`` / ``context_len`` observation groups."""

    is_recurrent: bool = False

    def __init__(self, obs: TensorDict, obs_groups: dict, obs_set: str, output_dim: int, *, proprio_size: int,
                 num_frames: int, frame_size: int, d_model: int = 128, num_layers: int = 2, num_heads: int = 4,
                 encoder_channels=(32, 32), encoder_out: int = 64, obs_normalization: bool = True,
                 distribution_cfg: dict | None = None):
        super().__init__()
        ctx = obs["policy_context"]
        self.obs_dim = int(ctx.shape[-1])
        self.context = int(ctx.shape[1])
        self.obs_groups = ["policy_context", "context_len"]
        self.obs_normalization = obs_normalization
        # normalise each token with running statistics of single observations (shared over time)
        self.obs_normalizer = EmpiricalNormalization(self.obs_dim) if obs_normalization else nn.Identity()
        self.net = CausalTransformer(proprio_size, num_frames, frame_size, output_dim, self.context, d_model,
                                     num_layers, num_heads, list(encoder_channels), encoder_out)
        self.distribution = None
        if distribution_cfg is not None:  # exploration noise while the student acts in DAgger
            dist_class, dist_cfg = resolve_class(distribution_cfg)
            self.distribution = dist_class(output_dim, **dist_cfg)

    def act_on(self, ctx: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """(B, C, D) raw observations + (B, 1) valid length -> (B, A) action."""
        b, c, d = ctx.shape
        tokens = self.obs_normalizer(ctx.reshape(b * c, d)).reshape(b, c, d)
        valid = torch.arange(c, device=ctx.device).unsqueeze(0) >= (c - n.reshape(b, 1).long())
        # padded tokens stay exactly zero after normalisation, as the deployment runner pads with zeros
        return self.net(tokens * valid.unsqueeze(-1).to(tokens.dtype), n)

    def forward(self, obs: TensorDict, masks=None, hidden_state=None, stochastic_output: bool = False):
        action = self.act_on(obs["policy_context"], obs["context_len"])
        if stochastic_output and self.distribution is not None:
            self.distribution.update(action)
            return self.distribution.sample()
        return action

    @property
    def output_std(self) -> torch.Tensor:
        return self.distribution.std if self.distribution is not None else torch.zeros(1)

    def reset(self, dones=None, hidden_state=None) -> None:
        pass

    def get_hidden_state(self):
        return None

    def detach_hidden_state(self, dones=None) -> None:
        pass

    def update_normalization(self, obs: TensorDict) -> None:
        if self.obs_normalization:
            ctx, n = obs["policy_context"], obs["context_len"]
            newest = ctx[:, -1]  # every step's newest observation is valid
            self.obs_normalizer.update(newest[n.reshape(-1) > 0])


# --- export wrappers: plain tensors in, action out (ONNX-traceable) -----------------------------------

class ExportFeedForward(nn.Module):
    """obs (1, D) -> action (1, A): normaliser + head (+ deterministic output of the distribution)."""

    def __init__(self, model: MLPModel):
        super().__init__()
        self.normalizer = model.obs_normalizer
        self.head = model.mlp
        self.input_size = model.obs_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.normalizer(obs))


class ExportTransformerWindow(nn.Module):
    """obs (1, C, D), context_len (1,) int64 -> action (1, A): the contract's transformer_window kind."""

    def __init__(self, model: CausalTransformerModel):
        super().__init__()
        self.model = model

    def forward(self, obs: torch.Tensor, context_len: torch.Tensor) -> torch.Tensor:
        return self.model.act_on(obs, context_len.reshape(-1, 1))


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))

