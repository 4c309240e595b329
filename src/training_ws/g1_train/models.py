"""Policy networks as rsl-rl custom model classes (``class_name = "g1_train.models:..."``).

All networks read the deployment observation through its layout (``ObservationConfig.layout()``):

    [ proprio history (H x P) | reference frame 0 = next frame (R) | future frames 1..F-1 (F-1 x R) ]

- :class:`MotionEncoder`: the next frame goes in explicitly; the 2 s future window is read by a 1-D
  convolution over time (channels = reference terms), GMT-style.
- :class:`MotionMoE`: a gating network (softmax over K experts) mixes K expert MLPs, all fed
  [proprio | next frame | window code | privileged extras]. Used by the teacher and the MoE student.
- :class:`CausalTransformer`: GPT-style causal decoder over the last C observations (one token per
  control step, front padding mask, relative positions), action read at the newest step. A step's
  keys/values depend on that step alone, so it is exported either as the contract's
  ``transformer_window`` kind (the policy node keeps the rolling context and recomputes it every tick)
  or as ``transformer_kv`` (one new token per tick against a cache of the last C-1 steps), and both give
  the same actions for every t. :class:`WindowGPT` is the first, window-only architecture.
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
                 encoder_out: int, zero_output: bool = False):
        super().__init__()
        self.proprio_size, self.ref_size = proprio_size, num_frames * frame_size
        self.encoder = MotionEncoder(num_frames, frame_size, encoder_channels, encoder_out)
        feat = proprio_size + self.encoder.out_dim + extra_size
        self.gate = _mlp([feat, *gate_hidden, num_experts])
        self.experts = nn.ModuleList(_mlp([feat, *expert_hidden, output_dim]) for _ in range(num_experts))
        if zero_output:  # the initial mean action is exactly 0: PPO starts at the base (pass-through + feedback)
            for e in self.experts:
                last = [m for m in e.modules() if isinstance(m, nn.Linear)][-1]
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)
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
                 gate_hidden=(128,), encoder_channels=(32, 32), encoder_out: int = 64, zero_output: bool = False,
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
                             list(expert_hidden), list(gate_hidden), list(encoder_channels), encoder_out,
                             zero_output=zero_output)


def _alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes 2^(-8 h / H): the initial recency preference of the age bias."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])


class TokenMemoryBlock(nn.Module):
    """One decoder layer of :class:`CausalTransformer`: the newest step's stream ``x`` (B, d) attends to
    keys/values computed from every step's OWN token (never from another step's contextualised state),
    with a learned per-head bias by age; then a pre-norm feed-forward. Because a step's keys/values
    depend on that step alone, a KV cache of them is exact for a sliding window (see the class below)."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, context: int):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of num_heads {num_heads}")
        self.heads, self.head_dim = num_heads, d_model // num_heads
        self.mem_norm = nn.LayerNorm(d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.q_norm = nn.LayerNorm(d_model)
        self.query = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff_norm = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.GELU(), nn.Linear(dim_feedforward, d_model))
        # bias[h, a] added to the score of a key a steps older than the query (a = 0 .. C-1)
        self.age_bias = nn.Parameter(-_alibi_slopes(num_heads).unsqueeze(1) * torch.arange(context).float())
        self.register_buffer("slot_age", torch.arange(context - 1, -1, -1), persistent=False)  # slot j: age C-1-j

    def keys_values(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, d) step tokens -> keys, values (B, heads, T, head_dim)."""
        b, t, _ = tokens.shape
        h = self.mem_norm(tokens)
        k = self.key(h).reshape(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.value(h).reshape(b, t, self.heads, self.head_dim).transpose(1, 2)
        return k, v

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """x (B, d): the newest step; k, v (B, heads, C, head_dim) oldest first, the newest step last;
        key_valid (B, C) bool. Slot j holds the step of age C-1-j."""
        b = key_valid.shape[0]
        q = self.query(self.q_norm(x)).reshape(b, self.heads, 1, self.head_dim)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (self.head_dim ** -0.5)            # (B, H, 1, C)
        bias = self.age_bias[:, self.slot_age]                                            # (H, C), by slot
        scores = (scores + bias.unsqueeze(1)).masked_fill(~key_valid[:, None, None, :], float("-inf"))
        att = torch.matmul(torch.softmax(scores, dim=-1), v).reshape(b, self.heads * self.head_dim)
        x = x + self.out(att)
        return x + self.ff(self.ff_norm(x))


class CausalTransformer(nn.Module):
    """(B, C, D) observations, oldest first, front-padded + (B, 1) valid length -> (B, A) action.

    GPT-style causal decoder whose attention is *KV-cache exact for a rolling window*: each step becomes
    one token (proprio + explicit next frame + conv code of the future window, linear embedding); at every
    layer the newest step's stream queries keys/values of the window's tokens, where a step's keys/values
    are a function of that step's own token only, and positions enter as a learned per-head bias on the
    step's age (newest = 0). So the keys/values a policy node cached when a step was the newest are exactly
    those a full recompute of any later window computes for it, and a cache of the last C-1 steps + the
    new one reproduces the rolling window for every t, also after the window has slid (t > C).

    (A standard decoder is not exact under a sliding window: with >= 2 layers a step's keys depend on the
    steps before it, which later windows no longer contain; and absolute window positions change every
    tick. That architecture is kept as :class:`WindowGPT` for checkpoints trained before this one.)
    """

    def __init__(self, proprio_size: int, num_frames: int, frame_size: int, output_dim: int, context: int,
                 d_model: int, num_layers: int, num_heads: int, encoder_channels: list[int], encoder_out: int,
                 dim_feedforward: int | None = None):
        super().__init__()
        self.proprio_size, self.ref_size, self.context = proprio_size, num_frames * frame_size, context
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.encoder = MotionEncoder(num_frames, frame_size, encoder_channels, encoder_out)
        self.embed = nn.Linear(proprio_size + self.encoder.out_dim, d_model)
        self.layers = nn.ModuleList(TokenMemoryBlock(d_model, num_heads, dim_feedforward or 2 * d_model, context)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, output_dim)

    def tokens(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, D) normalised observations -> (N, d_model) step tokens."""
        p, r = self.proprio_size, self.ref_size
        return self.embed(torch.cat([obs[:, :p], self.encoder(obs[:, p:p + r])], -1))

    def forward(self, tokens: torch.Tensor, context_len: torch.Tensor) -> torch.Tensor:
        b, c, d = tokens.shape
        e = self.tokens(tokens.reshape(b * c, d)).reshape(b, c, -1)
        # Padding: the first C - len slots hold no observation yet and are masked as keys; the newest
        # slot is always valid (context_len >= 1), so no row is all-masked.
        key_valid = torch.arange(c, device=tokens.device).unsqueeze(0) >= (c - context_len.reshape(b, 1).long())
        x = e[:, -1]
        for layer in self.layers:
            k, v = layer.keys_values(e)
            x = layer(x, k, v, key_valid)
        return self.head(self.norm(x))


class WindowGPT(nn.Module):
    """The first Transformer student (checkpoints with ``net.pos``): a standard pre-norm decoder over the
    window with learned absolute window positions. Exportable as ``transformer_window`` only: no KV cache
    reproduces its rolling window (see :class:`CausalTransformer`). Not used for new trainings."""

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


#: ``CausalTransformerModel(arch=...)``: the KV-exact decoder (default) or the first, window-only one
TRANSFORMER_ARCHS = {"token_memory": CausalTransformer, "window_gpt": WindowGPT}


def transformer_arch_of(state_dict: dict) -> str:
    """Which architecture a CausalTransformerModel state dict was trained with."""
    return "window_gpt" if "net.pos" in state_dict else "token_memory"


class _NoHiddenState:
    """rsl-rl's recurrent-model hooks for a model without a hidden state (the Transformer's window is in the
    observation)."""

    def reset(self, dones=None, hidden_state=None) -> None:
        pass

    def get_hidden_state(self):
        return None

    def detach_hidden_state(self, dones=None) -> None:
        pass


class CausalTransformerModel(_NoHiddenState, nn.Module):
    """rsl-rl student model over the ``policy_context`` / ``context_len`` observation groups.
    ``arch``: ``token_memory`` (:class:`CausalTransformer`, new trainings) or ``window_gpt``
    (:class:`WindowGPT`, to load checkpoints of the first architecture; ``transformer_arch_of``)."""

    is_recurrent: bool = False

    def __init__(self, obs: TensorDict, obs_groups: dict, obs_set: str, output_dim: int, *, proprio_size: int,
                 num_frames: int, frame_size: int, d_model: int = 128, num_layers: int = 2, num_heads: int = 4,
                 encoder_channels=(32, 32), encoder_out: int = 64, obs_normalization: bool = True,
                 distribution_cfg: dict | None = None, arch: str = "token_memory"):
        super().__init__()
        if arch not in TRANSFORMER_ARCHS:
            raise ValueError(f"CausalTransformerModel: arch {arch!r} is not one of {sorted(TRANSFORMER_ARCHS)}")
        ctx = obs["policy_context"]
        self.obs_dim = int(ctx.shape[-1])
        self.context = int(ctx.shape[1])
        self.obs_groups = ["policy_context", "context_len"]
        self.obs_normalization = obs_normalization
        # normalise each token with running statistics of single observations (shared over time)
        self.obs_normalizer = EmpiricalNormalization(self.obs_dim) if obs_normalization else nn.Identity()
        self.arch = arch
        self.net = TRANSFORMER_ARCHS[arch](proprio_size, num_frames, frame_size, output_dim, self.context, d_model,
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

    def update_normalization(self, obs: TensorDict) -> None:
        if self.obs_normalization:
            ctx, n = obs["policy_context"], obs["context_len"]
            newest = ctx[:, -1]  # every step's newest observation is valid
            self.obs_normalizer.update(newest[n.reshape(-1) > 0])


class ExpertActionModel(_NoHiddenState, nn.Module):
    """The DAgger "teacher" when a motion expert labels the states (``env.experts``,
    g1_train.experts): the env already computed the expert's action, so this model returns
    ``obs["expert_action"]``. No parameters: nothing to train, load or export."""

    is_recurrent = False

    def __init__(self, obs: TensorDict, obs_groups: dict, obs_set: str, output_dim: int, **_):
        super().__init__()
        if "expert_action" not in obs.keys() or obs["expert_action"].shape[-1] != output_dim:
            raise ValueError("ExpertActionModel: the env gives no expert_action of the action size (env.experts)")

    def forward(self, obs: TensorDict, masks=None, hidden_state=None, stochastic_output: bool = False):
        return obs["expert_action"]

    def update_normalization(self, obs: TensorDict) -> None:
        pass


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


class ExportTransformerKV(nn.Module):
    """The contract's ``transformer_kv`` kind from a :class:`CausalTransformer` student:

        obs (1, D), past_kv (L, 2, heads, C-1, head_dim), past_len (1,) int64 -> action (1, A), present_kv

    ``past_kv`` holds the keys/values of the previous C-1 steps, oldest first, newest last; the newest
    ``past_len`` slots are valid (the policy node feeds ``min(steps since reset, C-1)``). The new step's
    keys/values are appended, all C attended to (= the student's window of C steps), and ``present_kv``
    is the cache without its oldest slot. Same actions as the window forward for every t."""

    def __init__(self, model: "CausalTransformerModel"):
        super().__init__()
        if not isinstance(model.net, CausalTransformer):
            raise ValueError(f"a transformer_kv export needs the KV-exact architecture (token_memory); this "
                             f"student is {model.arch!r}, whose rolling window no KV cache reproduces once it has "
                             "slid (t > C): export it as transformer_window, or retrain")
        if model.context < 2:
            raise ValueError(f"a transformer_kv export needs a context of at least 2 steps, got {model.context}")
        self.model = model
        net = model.net
        self.cache_len = model.context - 1
        self.kv_shape = (len(net.layers), 2, net.num_heads, self.cache_len, net.head_dim)
        self.register_buffer("slots", torch.arange(model.context), persistent=False)

    def forward(self, obs: torch.Tensor, past_kv: torch.Tensor, past_len: torch.Tensor):
        net, c = self.model.net, self.model.context
        e = net.tokens(self.model.obs_normalizer(obs)).unsqueeze(1)                         # (1, 1, d)
        # slot j < C-1: cached step of age C-1-j, valid if among the newest past_len; slot C-1: this step
        key_valid = ((self.slots >= (c - 1) - past_len.reshape(1, 1)) | (self.slots == c - 1))  # (1, C)
        x = e[:, 0]
        present = []
        for i, layer in enumerate(net.layers):
            k_new, v_new = layer.keys_values(e)                                               # (1, H, 1, dh)
            k = torch.cat([past_kv[i, 0].unsqueeze(0), k_new], dim=2)                        # (1, H, C, dh)
            v = torch.cat([past_kv[i, 1].unsqueeze(0), v_new], dim=2)
            x = layer(x, k, v, key_valid)
            present.append(torch.stack([k[0, :, 1:], v[0, :, 1:]]))                         # (2, H, C-1, dh)
        return net.head(net.norm(x)), torch.stack(present)


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))

