"""--precision: the dtype models compute in while they train. What is saved is always float32.

bfloat16 and float16 are Keras' mixed policies (`mixed_bfloat16`, `mixed_float16`): layers compute in the narrow
type and keep float32 variables. bfloat16 has float32's exponent range and needs no loss scaling; float16 does, and
Keras' `compile` wraps the optimizer in a LossScaleOptimizer for it (the GAN wraps its two itself). The trained
weights are copied into the same model built in float32, so evaluate, export and verify see one kind of model
whatever the precision.

`auto` (the default) asks the device that trains, for a task that gains from a narrow type (Task.mixed_precision):
- a GPU: bfloat16 from compute capability 8.0 (Ampere and later compute it natively), float16 on 7.x (Volta and
  Turing tensor cores compute float16 only), float32 below;
- a CPU: bfloat16 where it multiplies bfloat16 in hardware (AVX-512 BF16, AMX), else float32: TensorFlow emulates
  bfloat16 on other CPUs, and the mixed policy is then slower than float32 (docs/performance.md).
Every other task trains in float32. An explicit precision the device emulates is kept, with a warning.
"""

import contextlib
import dataclasses
import functools

import keras

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}  # → Keras policy
CHOICES = ("auto", *PRECISIONS)
BFLOAT16_GPU, FLOAT16_GPU = (8, 0), (7, 0)  # the compute capabilities from which each is native on a GPU


@dataclasses.dataclass(frozen=True)
class Device:
    """What trains: the GPUs TensorFlow sees (their lowest compute capability decides), or the CPU."""
    kind: str                                        # "gpu" or "cpu"
    name: str
    compute_capability: tuple[int, int] | None = None
    cpu_flags: frozenset[str] = frozenset()

    def native(self, precision: str) -> bool:
        """Whether this device computes `precision` in hardware."""
        if precision == "float32":
            return True
        if self.kind == "gpu":
            return self.compute_capability >= (BFLOAT16_GPU if precision == "bfloat16" else FLOAT16_GPU)
        # A CPU: AVX-512 BF16 or AMX multiply bfloat16; float16 arithmetic (AVX-512 FP16, AMX-FP16) TensorFlow's
        # CPU kernels do not use for matrix products.
        return precision == "bfloat16" and bool(self.cpu_flags & {"avx512_bf16", "amx_bf16"})


def gpu_device(details: list[dict]) -> Device:
    """The Device for GPUs described as tf.config.experimental.get_device_details gives them."""
    capability = min(tuple(d.get("compute_capability") or (0, 0)) for d in details)
    names = sorted({d.get("device_name", "GPU") for d in details})
    return Device("gpu", f"{len(details)} × {', '.join(names)}", compute_capability=capability)


def cpu_device(cpuinfo: str) -> Device:
    """The Device for a CPU described as /proc/cpuinfo describes it (empty: unknown, no native bfloat16)."""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return Device("cpu", fields.get("model name", "CPU"), cpu_flags=frozenset(fields.get("flags", "").split()))


@functools.cache
def this_device() -> Device:
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return gpu_device([tf.config.experimental.get_device_details(gpu) for gpu in gpus])
    try:
        with open("/proc/cpuinfo") as f:
            return cpu_device(f.read())
    except OSError:  # not Linux: no way to tell, so the safe choice
        return cpu_device("")


def _described(device: Device) -> str:
    if device.kind == "gpu":
        return f"GPU {device.name}, compute capability {'.'.join(map(str, device.compute_capability))}"
    return f"CPU {device.name}"


def choose(requested: str, mixed_precision: bool, device: Device) -> tuple[str, str]:
    """The precision a run trains in, and why: `requested` is the flag (auto, or one of PRECISIONS)."""
    if requested != "auto":
        note = "" if device.native(requested) else f"; the {_described(device)} emulates it, which is slower"
        return requested, f"--precision={requested}{note}"
    if not mixed_precision:
        return "float32", "auto: this task trains in float32 (a narrow type measured no gain for it)"
    for candidate in ("bfloat16", "float16"):
        if device.native(candidate):
            return candidate, f"auto: the {_described(device)} computes {candidate} natively"
    return "float32", f"auto: the {_described(device)} computes no narrow type natively"


@contextlib.contextmanager
def policy(precision: str):
    """Models built inside compute in `precision`; the process-wide policy is restored after."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISIONS[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def in_float32(model: keras.Model, build) -> keras.Model:
    """`model` itself when it computes in float32; else `build()` (the same architecture, made under the float32
    policy) holding its weights."""
    if model.dtype_policy.name == "float32":
        return model
    with policy("float32"):
        twin = build()
    twin.set_weights(model.get_weights())
    return twin
