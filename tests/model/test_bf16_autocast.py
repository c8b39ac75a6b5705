"""bf16 autocast on the CPU: the same step as fp32 up to bf16 rounding, in every network variant."""

import copy
from dataclasses import replace

import pytest
import torch
from model_graphs import TINY, monuseg_graphs

import hmgdm_core.train.device as device_module
from hmgdm_core.diffusion import NoiseSchedule
from hmgdm_core.errors import InputError
from hmgdm_core.masking import MaskConfig
from hmgdm_core.model import HMGDM
from hmgdm_core.model.loss import gaussian_kl
from hmgdm_core.train import PretrainConfig, TrainConfig
from hmgdm_core.train.distributed import ProcessGroup
from hmgdm_core.train.step import optimisation_step

WINDOWS = replace(TINY, feature_dim=3072)
CONTEXT = MaskConfig(mode="context")
VARIANTS = {
    "default": (WINDOWS, CONTEXT),
    "official mask, one token per direction": (replace(WINDOWS, pair_tokens=False), MaskConfig(mode="official")),
    "residual decode": (replace(WINDOWS, residual_decode=True), CONTEXT),
    "no edge branch": (replace(WINDOWS, edge_branch=False), replace(CONTEXT, edge_ratio=0.0)),
    "mask-token targets": (replace(WINDOWS, target_input="mask_token"), CONTEXT),
    "input LayerNorm": (replace(WINDOWS, input_layernorm=True, standardise_inputs=False), CONTEXT),
}


def step(model: HMGDM, graphs: list, config: PretrainConfig) -> tuple[float, float, float, float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    result = optimisation_step(
        graphs,
        range(len(graphs)),
        [11, 12],
        5,
        len(graphs),
        model,
        NoiseSchedule(),
        optimizer,
        torch.amp.GradScaler(enabled=False),
        config,
        ProcessGroup(rank=0, world_size=1),
        torch.device("cpu"),
    )
    return result.parts


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bf16_step_follows_the_fp32_gradient(monuseg_dir, monkeypatch, variant):
    # Where the CPU has no native bf16 the autocast is emulated: slow, but the same arithmetic, so the property holds.
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    model_config, mask = VARIANTS[variant]
    graphs = monuseg_graphs(monuseg_dir, 2, 40)
    torch.manual_seed(0)
    start = HMGDM(model_config)
    if model_config.standardise_inputs:
        start.fit_standardisation(graphs)
    models, losses = {}, {}
    for precision in ("fp32", "bf16"):
        models[precision] = copy.deepcopy(start)
        config = PretrainConfig(model=model_config, mask=mask, train=TrainConfig(device="cpu", precision=precision))
        losses[precision] = step(models[precision], graphs, config)
    # Total, KL, node and edge parts: the loss is reduced in fp32 from bf16 activations.
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.03)
    grads = {
        p: torch.cat([q.grad.flatten() for q in m.parameters() if q.grad is not None]) for p, m in models.items()
    }
    assert grads["bf16"].dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(grads["bf16"], grads["fp32"], dim=0)
    assert cosine > 0.99
    # Autocast computes in bf16 but keeps the weights (and Adam's state) in fp32.
    assert all(q.dtype == torch.float32 for q in models["bf16"].parameters())


def test_cpu_precision_refusals(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(InputError, match="emulated"), device_module.autocast(cpu, "bf16"):
        pass
    with pytest.raises(InputError, match="fp16"), device_module.autocast(cpu, "fp16"):
        pass
    with pytest.raises(InputError, match="unknown precision"), device_module.autocast(cpu, "fp8"):
        pass
    with device_module.autocast(cpu, "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    assert device_module.precisions(cpu) == ("fp32",)
    assert device_module.precisions(torch.device("mps")) == ("fp32",)
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert device_module.precisions(cpu) == ("fp32", "bf16")
    with device_module.autocast(cpu, "bf16"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_every_offered_precision_autocasts_and_no_other(monkeypatch):
    # What the widget's drop-down offers (``precisions``) is exactly what ``autocast`` accepts, on each device kind.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    for native in (False, True):
        monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda native=native: native)
        for device in (torch.device("cpu"), torch.device("mps"), torch.device("cuda:0")):
            offered = device_module.precisions(device)
            assert offered[0] == "fp32"
            for precision in ("fp32", "bf16", "fp16"):
                try:
                    # Entering is all that is checked: CUDA autocast can be entered without a GPU.
                    with device_module.autocast(device, precision):
                        accepted = True
                except InputError:
                    accepted = False
                assert accepted == (precision in offered), (device, native, precision)
    assert device_module.precisions(torch.device("cuda:0")) == ("fp32", "fp16")


def test_kl_is_summed_in_fp32_from_bf16_latents():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = (torch.randn(4000, 64, generator=gen).to(torch.bfloat16) for _ in range(2))
    kl = gaussian_kl(mu, logvar)
    assert kl.dtype == torch.float32
    assert float(kl) == pytest.approx(float(gaussian_kl(mu.float(), logvar.float())), rel=1e-6)
