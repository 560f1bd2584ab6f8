"""--precision: the dtype models compute in while they train. What is saved is always float32.

bfloat16 is Keras' `mixed_bfloat16` policy: layers compute in bfloat16 and keep float32 variables, so no loss
scaling is needed (bfloat16 has float32's exponent range). Zen 4's AVX-512 BF16 runs its matrix products about
twice as fast as float32 (409 against 217 GFLOP/s measured here). The trained weights are copied into the same
model built in float32, so evaluate, export and verify see one kind of model whatever the precision.
"""

import contextlib
import functools

import keras

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # flag value → Keras dtype policy


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX). Without it TensorFlow emulates
    bfloat16 and the mixed policy is slower than float32, so a task's bfloat16 default applies only here."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: no way to tell, so the safe choice
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_for(task_precision: str) -> str:
    """A task's measured precision where it pays on this machine, else float32."""
    return task_precision if task_precision == "float32" or native_bfloat16() else "float32"


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
