"""--precision=auto chooses by the device that trains: GPUs by compute capability, CPUs by their native types."""

import dataclasses

import keras
import numpy as np
import pytest

from pipelines import precision
from pipelines.precision import choose, cpu_device, gpu_device
from tests.conftest import config_from_flags

ZEN4 = "model name\t: AMD EPYC 9004\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512_vnni\n"
AVX2 = "model name\t: Intel Xeon E5-2690 v4\nflags\t\t: fpu sse2 avx2 fma\n"
SAPPHIRE_RAPIDS = "model name\t: Intel Xeon 8480\nflags\t\t: avx512f amx_bf16 amx_tile\n"


def gpu(capability, name="GPU"):
    return gpu_device([{"compute_capability": capability, "device_name": name}])


@pytest.mark.parametrize("device, chosen", [
    (gpu((9, 0), "H100"), "bfloat16"),
    (gpu((8, 0), "A100"), "bfloat16"),
    (gpu((7, 5), "T4"), "float16"),
    (gpu((7, 0), "V100"), "float16"),
    (gpu((6, 1), "P4"), "float32"),
    (cpu_device(ZEN4), "bfloat16"),
    (cpu_device(SAPPHIRE_RAPIDS), "bfloat16"),
    (cpu_device(AVX2), "float32"),
    (cpu_device(""), "float32"),  # not Linux: nothing known, so float32
])
def test_auto_takes_the_narrow_type_the_device_computes_natively(device, chosen):
    picked, reason = choose("auto", mixed_precision=True, device=device)
    assert picked == chosen and reason.startswith("auto: the ")
    assert device.name in reason


def test_the_lowest_compute_capability_of_several_gpus_decides():
    device = gpu_device([{"compute_capability": (8, 0), "device_name": "A100"},
                         {"compute_capability": (7, 5), "device_name": "T4"}])
    assert choose("auto", True, device)[0] == "float16"


def test_a_task_without_a_gain_from_a_narrow_type_stays_in_float32_everywhere():
    for device in (gpu((9, 0)), cpu_device(ZEN4)):
        assert choose("auto", mixed_precision=False, device=device) == (
            "float32", "auto: this task trains in float32 (a narrow type measured no gain for it)")


@pytest.mark.parametrize("requested, device, emulated", [
    ("bfloat16", cpu_device(AVX2), True), ("bfloat16", gpu((7, 5)), True), ("float16", cpu_device(ZEN4), True),
    ("bfloat16", cpu_device(ZEN4), False), ("float16", gpu((7, 0)), False), ("float32", cpu_device(AVX2), False),
])
def test_an_explicit_precision_is_kept_and_says_when_the_device_emulates_it(requested, device, emulated):
    picked, reason = choose(requested, mixed_precision=False, device=device)
    assert picked == requested and device.native(requested) is not emulated
    assert ("emulates it" in reason) is emulated


def test_the_config_records_the_choice_and_its_reason(monkeypatch):
    monkeypatch.setattr(precision, "this_device", lambda: cpu_device(AVX2))
    conv = config_from_flags("--task=conv")
    assert (conv.precision, conv.precision_reason) == (
        "float32", "auto: the CPU Intel Xeon E5-2690 v4 computes no narrow type natively")
    monkeypatch.setattr(precision, "this_device", lambda: gpu((8, 6), "RTX 3090"))
    assert config_from_flags("--task=conv").precision == "bfloat16"
    assert config_from_flags("--task=conv", "--precision=float32").precision == "float32"
    numpy = config_from_flags("--task=dense", "--trainer=numpy")
    assert numpy.precision_reason == "--trainer=numpy computes in float32"


def test_float16_scales_the_gan_losses_and_trains_finite_weights():
    from models.gan import build_gan
    from pipelines.families.generator import compile_gan
    config = dataclasses.replace(config_from_flags("--task=gan"), precision="float16", steps_per_execution=1)
    with precision.policy("float16"):
        gan = build_gan((8, 8, 1), 2, generator_widths=(8,), discriminator_widths=(8,), noise_dim=4)
    compile_gan(gan, config)
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    pixels = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1)).astype(np.float32)
    history = gan.fit(pixels, np.zeros(32, np.int64), batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["g_loss"]).all()
    assert all(np.isfinite(w).all() for w in gan.get_weights())
