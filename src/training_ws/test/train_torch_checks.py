"""Model checks that need torch: run in the training venv by test_models.py (not collected directly)."""

from __future__ import annotations

import torch
from tensordict import TensorDict

from g1_train.models import CausalTransformer, MotionEncoder, MotionMoE

P, F, R, A = 30, 5, 7, 29


def test_motion_encoder_keeps_the_next_frame_explicit():
    enc = MotionEncoder(F, R, [8, 8], 16)
    ref = torch.randn(3, F * R)
    out = enc(ref)
    assert out.shape == (3, R + 16)
    torch.testing.assert_close(out[:, :R], ref[:, :R])
    ref2 = ref.clone()
    ref2[:, R:] += 1.0  # the future window reaches the code through the convolution
    assert not torch.allclose(enc(ref2)[:, R:], out[:, R:])


def test_moe_gate_is_a_distribution_and_mixes_experts():
    moe = MotionMoE(P, F, R, 4, A, num_experts=3, expert_hidden=[16], gate_hidden=[8], encoder_channels=[8],
                    encoder_out=8)
    x = torch.randn(5, P + F * R + 4)
    y = moe(x)
    assert y.shape == (5, A)
    torch.testing.assert_close(moe.last_gate.sum(-1), torch.ones(5))
    feat = torch.cat([x[:, :P], moe.encoder(x[:, P:P + F * R]), x[:, P + F * R:]], -1)
    manual = sum(moe.last_gate[:, k:k + 1] * moe.experts[k](feat) for k in range(3))
    torch.testing.assert_close(y, manual)


def test_moe_zero_output_starts_at_the_zero_action_and_still_learns():
    moe = MotionMoE(P, F, R, 4, A, num_experts=3, expert_hidden=[16], gate_hidden=[8], encoder_channels=[8],
                    encoder_out=8, zero_output=True)
    x = torch.randn(5, P + F * R + 4)
    y = moe(x)
    assert torch.equal(y, torch.zeros(5, A))
    (moe(x) - 1.0).pow(2).sum().backward()
    assert all(e[-1].weight.grad.abs().sum() > 0 for e in moe.experts)  # the output layers get gradients


def test_transformer_is_causal_and_ignores_padding():
    torch.manual_seed(0)
    c = 6
    net = CausalTransformer(P, F, R, A, c, d_model=16, num_layers=2, num_heads=2, encoder_channels=[8],
                            encoder_out=8).eval()
    d = P + F * R
    tokens = torch.randn(1, c, d)
    n = torch.tensor([[3.0]])
    tokens[:, :c - 3] = 0.0
    out = net(tokens, n)
    noisy = tokens.clone()
    noisy[:, :c - 3] = torch.randn(1, c - 3, d)  # content at padded positions must not matter
    torch.testing.assert_close(net(noisy, n), out)
    older = tokens.clone()
    older[:, c - 3] += 1.0  # the oldest valid step does matter (it is attended to)
    assert not torch.allclose(net(older, n), out)


def test_transformer_student_model_matches_export_wrapper():
    from g1_train.models import CausalTransformerModel, ExportTransformerWindow

    d = P + F * R
    obs = TensorDict({"policy_context": torch.randn(2, 4, d), "context_len": torch.tensor([[4.0], [2.0]])},
                     batch_size=[2])
    model = CausalTransformerModel(obs, {"student": ["policy_context", "context_len"]}, "student", A,
                                   proprio_size=P, num_frames=F, frame_size=R, d_model=16, num_layers=1,
                                   num_heads=2, encoder_channels=[8], encoder_out=8).eval()
    want = model(obs)
    got = ExportTransformerWindow(model)(obs["policy_context"], torch.tensor([4, 2]))
    torch.testing.assert_close(got, want)


def _student(c: int, layers: int, arch: str = "token_memory"):
    from g1_train.models import CausalTransformerModel

    d = P + F * R
    obs = TensorDict({"policy_context": torch.randn(1, c, d), "context_len": torch.ones(1, 1)}, batch_size=[1])
    model = CausalTransformerModel(obs, {"student": ["policy_context", "context_len"]}, "student", A,
                                   proprio_size=P, num_frames=F, frame_size=R, d_model=16, num_layers=layers,
                                   num_heads=2, encoder_channels=[8], encoder_out=8, arch=arch)
    with torch.no_grad():  # trained-looking weights: non-trivial biases, normaliser statistics
        for prm in model.parameters():
            prm.add_(0.2 * torch.randn_like(prm))
        model.obs_normalizer._mean.add_(torch.randn_like(model.obs_normalizer._mean))
        model.obs_normalizer._std.mul_(0.5 + torch.rand_like(model.obs_normalizer._std))
    return model.eval()


def _window_actions(model, seq: torch.Tensor) -> torch.Tensor:
    """The student's own semantics: at step t the last C observations, zero-padded at the front."""
    c, d = model.context, seq.shape[1]
    out = []
    for t in range(seq.shape[0]):
        n = min(t + 1, c)
        win = torch.zeros(1, c, d)
        win[0, c - n:] = seq[t + 1 - n:t + 1]
        out.append(model.act_on(win, torch.tensor([[float(n)]]))[0])
    return torch.stack(out)


def test_kv_export_reproduces_the_rolling_window_for_every_step():
    """One token per call against a C-1 step cache == the full window recompute, also once the window
    has slid (t > C), with several layers (where a standard decoder's cache would drift)."""
    from g1_train.models import ExportTransformerKV

    torch.manual_seed(1)
    model = _student(c=5, layers=3)
    kv = ExportTransformerKV(model).eval()
    assert kv.kv_shape == (3, 2, 2, 4, 8)
    seq = 2.0 * torch.randn(3 * model.context + 4, P + F * R)
    with torch.no_grad():
        want = _window_actions(model, seq)
        past, got = torch.zeros(kv.kv_shape), []
        for t in range(seq.shape[0]):  # the policy node's protocol: past_len = min(steps, cache length)
            action, past = kv(seq[t:t + 1], past, torch.tensor([min(t, kv.cache_len)]))
            got.append(action[0])
    torch.testing.assert_close(torch.stack(got), want, atol=1e-5, rtol=1e-5)
    assert want.abs().mean() > 0.1 and (want[-1] - want[-2]).abs().max() > 1e-3  # not a constant output


def test_kv_export_refuses_the_window_only_architecture():
    import pytest
    from g1_train.models import ExportTransformerKV, transformer_arch_of

    legacy = _student(c=4, layers=2, arch="window_gpt")
    assert transformer_arch_of(legacy.state_dict()) == "window_gpt"
    assert transformer_arch_of(_student(c=4, layers=2).state_dict()) == "token_memory"
    with pytest.raises(ValueError, match="transformer_window"):
        ExportTransformerKV(legacy)


def test_torchrun_environment_selects_the_rank_device_and_seed(monkeypatch):
    import pytest
    from g1_train.config import TrainCfg
    from g1_train.train import resolve_distributed

    cfg = TrainCfg()
    resolve_distributed(cfg)
    assert cfg.device == "cpu" and cfg.env.seed == 0  # plain run: untouched
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    resolve_distributed(cfg)
    assert cfg.device == "cpu" and cfg.env.seed == 1  # CPU ranks (gloo): own seed, still the CPU
    cfg = TrainCfg(device="cuda")
    resolve_distributed(cfg)
    assert cfg.device == "cuda:1" and cfg.env.seed == 1  # rsl-rl's multi-GPU path requires cuda:<LOCAL_RANK>
    with pytest.raises(ValueError, match="cuda"):
        resolve_distributed(TrainCfg(device="mps"))


def test_more_ranks_than_gpus_share_them_over_gloo(monkeypatch):
    """A 1-GPU machine with 16 cores: 16 ranks all on cuda:0 over gloo (NCCL refuses shared GPUs); as many
    GPUs as ranks: cuda:<LOCAL_RANK> over NCCL; more ranks than GPUs: LOCAL_RANK mod GPUs."""
    import os

    from g1_train.config import TrainCfg
    from g1_train.train import PG_BACKEND_ENV, rank_device, resolve_distributed

    assert [rank_device("cuda", r, 16, 1) for r in (0, 5, 15)] == [("cuda:0", "gloo")] * 3
    assert rank_device("cuda", 3, 4, 4) == ("cuda:3", "nccl")
    assert [rank_device("cuda", r, 8, 2)[0] for r in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert rank_device("cuda", 1, 2, 0) == ("cuda:1", "nccl")  # no GPU visible: torch will say so
    assert rank_device("cpu", 7, 16, 1) == ("cpu", "gloo")
    for k, v in {"WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "16", "LOCAL_RANK": "9", "RANK": "9"}.items():
        monkeypatch.setenv(k, v)
    cfg = TrainCfg(device="cuda")
    resolve_distributed(cfg, gpu_count=1)
    assert cfg.device == "cuda:0" and cfg.env.seed == 9 and os.environ[PG_BACKEND_ENV] == "gloo"
    monkeypatch.delenv(PG_BACKEND_ENV)


def test_weight_average_is_an_ema_of_the_parameters_with_the_live_buffers():
    from g1_train.train import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    avg = WeightAverage(net, 0.75)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.fill_(5.0)  # a buffer (like the observation normaliser): taken as it is
    avg.update(net)
    sd = avg.state_dict(net)
    for n, p in net.named_parameters():
        torch.testing.assert_close(sd[n], start[n] + 0.25)  # 0.75 * w0 + 0.25 * (w0 + 1)
    torch.testing.assert_close(sd["1.running_mean"], torch.full((2,), 5.0))
    assert avg.info() == {"decay": 0.75, "updates": 1}
    # restored from a checkpoint's average, it goes on from there
    again = WeightAverage(net, 0.75, sd, updates=1)
    torch.testing.assert_close(again.state_dict(net)["0.weight"], sd["0.weight"])
    for bad in (0.0, 1.0, -0.1):
        try:
            WeightAverage(net, bad)
        except ValueError as e:
            assert "weight_average" in str(e)
        else:
            raise AssertionError(f"decay {bad} accepted")
