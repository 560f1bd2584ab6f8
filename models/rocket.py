"""MiniRocket (Dempster, Schmidt and Webb, KDD 2021) in Keras: a series classifier whose features are fixed.

    window [steps, channels] → on its lattice (`lattice`: the raw values in 8-bit steps of the train range, what
    the int8 file's input holds; with --series_scaling=each, each series standardised by itself, models/sequence.py)
    → for each dilation d (up to 32,
    log-spaced up to (steps − 1) / 8): the 84 kernels of length 9 whose weights are −1 but three 2s, dilated by d,
    each over a random subset of the channels → for each kernel, the proportion of its outputs above each of its
    biases (PPV) → about 10,000 features → a ridge regression fitted in closed form, as two Dense layers added
    (`split_kernel`)

Nothing is learned by gradient steps. The biases are quantiles of each kernel's output on a random train series
(`fit_biases`, from a fixed seed); the head is scikit-learn's RidgeClassifierCV on the features scaled by their
spread (its regularization chosen by leave-one-out cross-validation), folded into the head, with a temperature
fitted on the leave-one-out decisions so that its softmax is a calibrated probability. The head is two Dense layers
whose kernels add up to the ridge's: the first holds it rounded to 8 bits per class, the second what that rounding
left. A ridge over 10,000 features has large weights that cancel, and one 8-bit kernel rounds the small ones away
(OSULeaf: the dynamic-range file agreed with Keras on 38% of test series); two hold it to about 16 bits (100%). The
kernels alternate between zero padding and none, as the paper's do: a padded kernel's PPV is over every step, an
unpadded one's over the steps its window fits. Series of different lengths (NaN past their end, on the lattice:
`masked`) are each computed on as a series of their own length: zero padding (the center) past its end, and each
PPV over its own steps; the int8 file reads its lowest code there. `tests/models/test_rocket.py` checks the
features against a NumPy implementation of the paper's algorithm.

Every op is a TFLite builtin (CONV_2D with dilation, STRIDED_SLICE, GREATER, CAST, MEAN, PACK; masked, also
EQUAL, SELECT_V2, MUL, DIV and MAXIMUM), so the model ships
like any other; the int8 file computes it without the grid, each bias inside its convolution (MiniRocket.int8_config).
"""

import itertools
import math
from typing import Sequence

import keras
import numpy as np
from keras import layers, ops

from models import BuildError
from models.sequence import WINDOW, Window

KERNEL_LENGTH = 9
# The 84 kernels: three of the nine positions weigh 2, the others −1 (so every kernel's weights sum to 0).
TWOS = np.array(list(itertools.combinations(range(KERNEL_LENGTH), 3)))
KERNELS = np.full((KERNEL_LENGTH, len(TWOS)), -1.0, np.float32)
for _j, _positions in enumerate(TWOS):
    KERNELS[_positions, _j] = 2.0
# The series is rounded to multiples of this before the convolutions. A feature is a step function of a convolution
# output; computed in a different order (another batch size, another runtime), a float sum moves by a rounding
# error, and an output that close to its bias flips the feature (the float files then differed from Keras by up to
# 2.5e-4 in a logit). On this grid every output is a sum of integer multiples of 2^-10 well within float32's 24
# bits, exact in any order: every runtime computes the same features. (z-normalised values move by at most 5e-4.)
GRID = 2.0 ** -10
NUM_FEATURES = 10_000
MAX_DILATIONS = 32
# The int8 form's scale of a convolution output's distance from its bias before it is clipped to [−1, 1]
# (MiniRocket._saturated): a sign 8 bits get wrong only within 1/(255 · this) of the bias.
SATURATION = 1000.0
# On the lattice (`lattice`) an output is an integer number of units and a bias half-way between two: the difference
# is at least half a unit, so twice it in units is saturated already (and a convolution's requantization stays
# within the 256 XNNPACK's int8 kernels take: 1000 there made LiteRT refuse the file).
LATTICE_SATURATION = 2.0
# The kernels' order in a convolution's outputs: the even ones, then the odd ones, whose PPVs alternate between every
# step and the unpadded ones (`padded`): contiguous halves. Taken by stride 2 instead, LiteRT's float32 file took
# twice as long (ArrowHead: 8.4 ms a series against 4.3).
EVEN_FIRST = np.r_[0:len(TWOS):2, 1:len(TWOS):2]
# TFLite's dynamic-range quantizer leaves a weight tensor smaller than this in float (its min_elements_for_weights).
DYNAMIC_RANGE_MIN_WEIGHTS = 1024
SEED = 0


def dilations(steps: int, num_features: int = NUM_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """The dilations (log-spaced from 1 to (steps − 1) / 8, unique) and how many biases each kernel has at each:
    about `num_features` / 84 per kernel in all, in proportion to how often a dilation came up before rounding."""
    per_kernel = max(num_features // len(TWOS), 1)
    count = min(per_kernel, MAX_DILATIONS)
    exponent = np.log2(max((steps - 1) / (KERNEL_LENGTH - 1), 1.0))
    found, times = np.unique(np.logspace(0, exponent, count, base=2).astype(np.int32), return_counts=True)
    features = (times * (per_kernel / count)).astype(np.int32)
    for i in range(per_kernel - int(features.sum())):
        features[i % len(features)] += 1
    return found, features


def quantiles(n: int) -> np.ndarray:
    """A low-discrepancy sequence in (0, 1): the fractional parts of k · golden ratio, k = 1 … n."""
    return (np.arange(1, n + 1) * ((np.sqrt(5) + 1) / 2)) % 1


def channel_masks(channels: int, count: int, seed: int = SEED) -> np.ndarray:
    """[count, channels, 84]: which channels each kernel reads at each dilation (all of one channel's; for several,
    a random subset of 1 … min(channels, 9), log-uniformly many, as MiniRocket's multivariate form draws them)."""
    masks = np.zeros((count, channels, len(TWOS)), np.float32)
    if channels == 1:
        masks[:] = 1.0
        return masks
    rng = np.random.default_rng(seed)
    exponent = np.log2(min(channels, KERNEL_LENGTH) + 1)
    for d in range(count):
        for j in range(len(TWOS)):
            taken = int(2 ** rng.uniform(0, exponent))
            masks[d, rng.choice(channels, max(1, min(taken, channels)), replace=False), j] = 1.0
    return masks


def padded(dilation_index: int, kernel_index: int) -> bool:
    """Whether a kernel's PPV is over every step (zero padding) or only where its window fits: they alternate."""
    return (dilation_index + kernel_index) % 2 == 0


def lattice(low: float, high: float, missing: bool = False) -> tuple[float, int]:
    """The 8-bit lattice a series is classified on, from its train values' range: (unit, zero point), so that
    int8 values q = round(x / unit) + zero point hold every train value (and 0, which TFLite's int8 tensors hold
    exactly), as the int8 file's input holds them. The unit's reciprocal, which a series is multiplied by
    (`MiniRocket.in_units`), has 11 significant bits: exact in a float16 file's constants too (for a train range
    from 0.004 to 4·10⁶, within float16's normal numbers; beyond, verify judges that file), so every file rounds
    a value to the same integer (a converter makes a division by the unit a product with its reciprocal, which
    float16 held to 1/2048: 3 values in 1,000 rounded the other way). A power of two would be exact either way but
    coarser by up to 2× (ACSF1: 0.84 test accuracy, against 0.89 on the finest lattice).

    `missing`: the series have different lengths, and the lowest code, −128, is kept for the steps past a
    series' end (`MiniRocket.masked`): the train values then lie within the codes −127 to 127."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    lowest = -127 if missing else -128
    span = (high - low) / (126 - lowest) or 1.0  # then an integer zero point exists that keeps both ends
    exponent = math.floor(math.log2(1 / span)) - 10
    mantissa = math.floor(math.ldexp(1 / span, -exponent))  # rounded down: a wider unit
    # Odd: an integer-valued series then lands half-way between two units at most once in 2^(10 − log2 reciprocal)
    # values (0.84375 = 27/32 put one in 32 there), where the int8 file's input, whose scale is the unit to 1e-7,
    # may round it either way.
    reciprocal = math.ldexp(mantissa - (1 - mantissa % 2), exponent)
    return 1 / reciprocal, math.ceil(lowest - low * reciprocal)


def on_grid(x):
    """The series rounded to GRID (NumPy or a tensor)."""
    return (np.round(x / GRID) if isinstance(x, np.ndarray) else ops.round(x / GRID)) * GRID


def convolve(x: np.ndarray, dilation: int, mask: np.ndarray) -> np.ndarray:
    """[steps, channels] → [steps, 84]: every kernel at `dilation` over its channels (`mask`), zero padding, on the
    series rounded to GRID."""
    steps = len(x)
    x = on_grid(x.astype(np.float32)).astype(np.float64)
    pad = (KERNEL_LENGTH - 1) * dilation // 2
    wide = np.pad(x, ((pad, pad), (0, 0)))
    shifted = np.stack([wide[k * dilation:k * dilation + steps] for k in range(KERNEL_LENGTH)])  # [9, steps, ch]
    return np.einsum("ksc,kj,cj->sj", shifted, KERNELS, mask)


def fit_biases(series: np.ndarray, steps: int, num_features: int = NUM_FEATURES, seed: int = SEED,
               valid: np.ndarray | None = None) -> list:
    """Per dilation, [84, biases]: quantiles of each kernel's output on one random train series (the paper's
    choice: biases that cut real outputs, in 0.0x s), over its own steps (`valid` [n, steps]: which steps of
    `series` hold values, the rest 0; None: all). `series`: [n, steps, channels], as the features layer computes on
    them (z-normalised, or in units)."""
    found, per = dilations(steps, num_features)
    masks = channel_masks(series.shape[-1], len(found), seed)
    valid = np.ones(series.shape[:2], bool) if valid is None else valid
    rng = np.random.default_rng(seed)
    q = quantiles(len(TWOS) * int(per.sum()))
    biases, start = [], 0
    for d, (dilation, count) in enumerate(zip(found, per)):
        row = np.zeros((len(TWOS), count), np.float32)
        for j in range(len(TWOS)):
            i = rng.integers(len(series))
            output = convolve(series[i], int(dilation), masks[d])[valid[i], j]
            row[j] = np.quantile(output, q[start:start + count])
            start += count
        biases.append(row)
    return biases


def features(series: np.ndarray, biases: list, num_features: int = NUM_FEATURES, seed: int = SEED,
             valid: np.ndarray | None = None) -> np.ndarray:
    """The features in NumPy, as the paper computes them ([n, steps, channels] → [n, features]): the reference the
    Keras layer is tested against. A series shorter than `steps` (`valid` [n, steps]: its steps, a prefix; the
    rest of `series` 0) is computed on as a series of its own length: a padded kernel's PPV over its steps, an
    unpadded one's over the steps its window fits in them (none: 0)."""
    steps = series.shape[1]
    found, per = dilations(steps, num_features)
    masks = channel_masks(series.shape[-1], len(found), seed)
    lengths = np.full(len(series), steps)
    if valid is not None:
        lengths = valid.sum(axis=1)
        if not np.array_equal(valid, np.arange(steps) < lengths[:, None]):
            raise ValueError("a series' valid steps are its first ones (missing values only past its end)")
    rows = []
    for x, length in zip(series, lengths):
        row = []
        for d, dilation in enumerate(found):
            output = convolve(x, int(dilation), masks[d])
            pad = (KERNEL_LENGTH - 1) * int(dilation) // 2
            for j in range(len(TWOS)):
                c = output[:length, j] if padded(d, j) else output[pad:max(length - pad, pad), j]
                row.extend((c[:, None] > biases[d][j][None, :]).mean(axis=0) if len(c) else np.zeros(len(biases[d][j])))
        rows.append(row)
    return np.asarray(rows, np.float32)


@keras.saving.register_keras_serializable(package="dlpipe")
class MiniRocket(layers.Layer):
    """[batch, steps, channels] → [batch, features]: the PPV of every kernel, dilation and bias, in the order of
    `features` (dilation, then kernel, then bias). The biases are weights set by `fit_biases` (not trained)."""

    # Its outputs are step functions of the input: verify judges the float files' mean difference from Keras, as
    # an input a rounding error from a step flips a feature (families/classifier.py).
    step_function = True

    def __init__(self, steps: int, channels: int, num_features: int = NUM_FEATURES, seed: int = SEED,
                 grid: bool = True, saturate: bool = False, unit: float = 0.0, zero_point: int = 0,
                 center: float = 0.0, masked: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.steps, self.channels, self.num_features, self.seed = steps, channels, num_features, seed
        self.grid = grid  # the series rounded first: to GRID, or to the lattice
        self.saturate = saturate  # each bias inside its convolution, the difference saturated (the int8 form)
        # The lattice (`lattice`): a raw series is computed on in units of `unit`, rounded as the int8 file's input
        # rounds it and `center` (the train mean in units, where zero padding lies) subtracted. 0: the series comes
        # scaled, on GRID.
        self.unit, self.zero_point, self.center = float(unit), int(zero_point), float(center)
        # Series of different lengths, padded past their end with missing values (NaN; in the int8 file, its
        # lowest code): each computed on as a series of its own length (`features`), on the lattice only.
        self.masked = bool(masked)
        if self.masked and not (self.unit and channels == 1):
            raise ValueError("MiniRocket masks the steps past a series' end on the lattice only (one channel)")
        self.dilations, self.per = dilations(steps, num_features)
        self.masks = channel_masks(channels, len(self.dilations), seed)

    def build(self, input_shape):
        self.biases = [self.add_weight(shape=(len(TWOS), int(count)), initializer="zeros", trainable=False,
                                       name=f"biases_{d}") for d, count in enumerate(self.per)]

    @property
    def feature_count(self) -> int:
        return len(TWOS) * int(self.per.sum())

    def int8_config(self) -> dict:
        """How the int8 file computes it (pipelines/shipping.py: for_int8).

        Without GRID, which an 8-bit series is coarser than, and which TFLite has no int8 ROUND for: computed in
        float between a dequantize and a quantize, it left the tensors around it mis-scaled (every value 0 or the
        largest: OSULeaf's int8 file agreed with Keras on 17% of test series; without the grid, 94%).

        Saturated (`_saturated`): 8 bits then hold which side of each bias a convolution output is, where they
        held the outputs and the biases each to 1/255 of their range (test-series agreement with Keras: ArrowHead
        94% → 99.5%, OSULeaf 95% → 99.8%, ACSF1 25% → 74%, which its series scaled in float and rounded to 8 bits
        by the int8 file alone allowed at best). On the lattice the model computes on the series as the int8
        file's input holds it: ACSF1 100%."""
        return {"grid": False, "saturate": True}

    def call(self, x):
        valid = self.valid_steps(x) if self.masked else None
        if self.grid:
            x = self.in_units(x) if self.unit else on_grid(x)
        elif self.masked:  # the saturated form: the raw series, its missing steps at the center (zero padding)
            x = self._centered_past_end(x)
        if self.zero_channel and not self.saturate:  # (the saturated form pads its steps first, with the center)
            x = ops.pad(x, ((0, 0), (0, 0), (0, 1)))  # last (`_kernel`)
        found = []
        for d, dilation in enumerate(self.dilations):
            # A feature is the share of steps at which output > threshold: [batch, steps, 84, 1 or biases], the
            # even kernels first (EVEN_FIRST), against [84, biases or 1] in kernel order.
            output, threshold = (self._saturated if self.saturate else self._plain)(x, d)
            pad = (KERNEL_LENGTH - 1) * int(dilation) // 2
            shares, half = [], len(TWOS) // 2
            for first in (0, 1):  # the even kernels, then the odd ones: padded or not alternate (`padded`)
                part = output[:, :, first * half:(first + 1) * half]
                part = part if padded(d, first) else part[:, pad:self.steps - pad]
                above = ops.cast(part > threshold[first::2], "float32")  # [batch, steps, 42, …]
                shares.append(ops.mean(above, axis=1) if valid is None else
                              self._share(above, valid if padded(d, first) else valid[:, 2 * pad:]))
            ppv = ops.stack(shares, axis=2)  # [batch, 42, 2, biases]: kernel 2i, then 2i + 1
            found.append(ops.reshape(ppv, (-1, len(TWOS) * int(self.per[d]))))
        return ops.concatenate(found, axis=-1)

    @property
    def zero_channel(self) -> bool:
        """Whether the kernels read a zero channel (`_kernel`): in the int8 form, and where the plain form's kernels
        are large enough for TFLite's dynamic-range quantizer to hold them in 8 bits (several channels). A
        univariate kernel (756 weights) stays in float there, with the series it convolves: with the zero channel,
        ArrowHead's dynamic-range file agreed with Keras on 99.5% of test series, without it on 100%."""
        return self.saturate or KERNEL_LENGTH * self.channels * len(TWOS) >= DYNAMIC_RANGE_MIN_WEIGHTS

    def _kernel(self, d: int, copies: int = 1) -> np.ndarray:
        """[9, channels (+ 1), 84 · copies]: the kernels at dilation `d` over their channels, the even ones first
        (EVEN_FIRST; each `copies` times, side by side), and the zero channel's weight (`zero_channel`), 127/63 of
        their unit: a quantized convolution's weights are 127 symmetric steps of each output channel's largest, and
        with it −1 and 2 are whole steps (−63, 126), where with 127 steps of 2, −1 is −63.5 and the kernels no
        longer sum to zero (a dynamic-range file's outputs then moved with a series' level: JapaneseVowels agreed
        with Keras on 98.6%)."""
        kernel = np.repeat((KERNELS[:, None, :] * self.masks[d][None])[..., EVEN_FIRST], copies, axis=2)
        if not self.zero_channel:
            return kernel.astype(np.float32)
        exact = np.zeros((KERNEL_LENGTH, 1, kernel.shape[2]))
        exact[0] = 127 / 63
        return np.concatenate([kernel, exact], axis=1).astype(np.float32)

    def _plain(self, x, d: int):
        """Every kernel's output at dilation `d`, [batch, steps, 84, 1], and its biases, [84, biases]."""
        output = ops.conv(x, self._kernel(d), padding="same", dilation_rate=int(self.dilations[d]))
        return output[..., None], self.biases[d]

    def _saturated(self, x, d: int):
        """`_plain` as 8 bits compute it well: one convolution output a bias (its kernel repeated), the bias
        subtracted inside it, the difference × SATURATION clipped to [−1, 1], [batch, steps, 84, biases], against 0:
        an 8-bit output's sign is then wrong only within 1/(255 · SATURATION) of the bias.

        On the lattice, `x` is the raw series, which the int8 file's input has rounded to it: the unit is in the
        kernels and the padding is the center, so that no op between the input and the convolution rounds again
        (its output is the plain form's on the rounded series, in units)."""
        count = int(self.per[d])
        dilation, pad = int(self.dilations[d]), (KERNEL_LENGTH - 1) * int(self.dilations[d]) // 2
        unit = self.unit or 1.0
        wide = ops.pad(x, ((0, 0), (pad, pad), (0, 0)), constant_values=self.center * unit)
        steps = self.steps + self.masked
        if self.masked:
            # One step more, whose output is dropped, holding the missing code's value: every tensor from the input
            # to the convolution, which the int8 file gives one scale (the last one's, from calibration), then
            # holds it, and that scale stays the unit (without it, the code read as the lowest value).
            wide = ops.pad(wide, ((0, 0), (0, 1), (0, 0)), constant_values=self.input_range[0])
        if self.zero_channel:
            wide = ops.pad(wide, ((0, 0), (0, 0), (0, 1)))  # last (`_kernel`)
        # The nine taps side by side, one 1-step convolution over them: a dilated one is lowered to other ops
        # (SPACE_TO_BATCH_ND …) that leave the bias outside it, in 8 bits.
        taps = ops.concatenate([wide[:, k * dilation:k * dilation + steps] for k in range(KERNEL_LENGTH)], -1)
        kernel = self._kernel(d, count)
        saturation = LATTICE_SATURATION if self.unit else SATURATION
        output = ops.conv(taps, (saturation / unit) * kernel.reshape(1, -1, kernel.shape[-1]))
        biases = ops.concatenate([self.biases[d][0::2], self.biases[d][1::2]], axis=0)  # EVEN_FIRST
        difference = ops.clip(output - saturation * ops.reshape(biases, (-1,)), -1.0, 1.0)[:, :self.steps]
        return ops.reshape(difference, (-1, self.steps, len(TWOS), count)), np.zeros((len(TWOS), 1), np.float32)

    def _centered_past_end(self, x):
        """The raw series with the center (where zero padding lies) past its end."""
        return ops.where(self._present(x), x, self.center * self.unit)

    def _share(self, above, valid):
        """The share of a series' own steps (`valid` [batch, steps'], 0 or 1) at which an output is above its bias:
        0 where none is (a series shorter than an unpadded kernel's window)."""
        valid = valid[:, :, None, None]
        return ops.mean(above * valid, axis=1) / ops.maximum(ops.mean(valid, axis=1), 1.0 / self.steps)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.feature_count)

    @property
    def _unit_range(self) -> tuple[int, int]:
        """The units a value is clipped to: the int8 codes, less the lowest where it marks a missing step."""
        return -128 + self.masked - self.zero_point, 127 - self.zero_point

    def in_units(self, x):
        """A raw series on the lattice, in units (integers) less the center: as the int8 file's input rounds and
        clips it (NumPy or a tensor); 0 past a series' end (`masked`). NaN is replaced before any arithmetic, by a
        select on x ≠ x: tf2onnx makes other selects of floats products, and NaN · 0 is NaN."""
        reciprocal = np.float32(1 / self.unit)  # 11 significant bits (`lattice`)
        if isinstance(x, np.ndarray):
            present = ~np.isnan(x) if self.masked else True
            x = np.where(present, x, self.input_range[0]).astype(np.float32)
            return np.where(present, np.clip(np.round(x * reciprocal), *self._unit_range) - self.center, 0.0)
        present = self._present(x) if self.masked else None
        if self.masked:
            x = ops.where(ops.not_equal(x, x), self.input_range[0], x)
        found = ops.clip(ops.round(x * reciprocal), *self._unit_range) - self.center
        return ops.where(present, found, 0.0) if self.masked else found

    def valid_steps(self, x):
        """[batch, steps]: whether a step holds a value (1) or lies past its series' end (0), as a masked layer
        reads them: NaN, or in the int8 form (whose input is a code) the lowest code (NumPy: booleans; a tensor: 0
        or 1)."""
        if isinstance(x, np.ndarray):
            return ~np.isnan(x[..., 0])
        return ops.cast(self._present(x), "float32")[..., 0]

    def _present(self, x):
        """[batch, steps, 1] booleans (`valid_steps`; of the one channel), kept in the series' shape (LiteRT
        aborted on a slice of booleans). The int8 form compares with half-way between the lowest code and the
        next (raw: in units, LiteRT aborted on the comparison's scale of exactly 1); the others read NaN, and a
        finite value below the lattice is clipped to its lowest value, not missing."""
        if self.saturate:
            return x > np.float32((-127.5 - self.zero_point) * self.unit)
        return ops.equal(x, x)

    def int8_input(self, x: np.ndarray) -> np.ndarray:
        """Raw series as an app gives the int8 file them (pipelines/shipping.py: `to_quantizable_inputs`): masked,
        NaN becomes the lowest code's value (−128, missing) and a finite value is at least the next code's
        (−127), as the float files clip it; otherwise as they are."""
        if not self.masked:
            return x
        lowest = np.float32((-127 - self.zero_point) * self.unit)
        return np.where(np.isnan(x), np.float32(self.input_range[0]), np.maximum(x, lowest)).astype(x.dtype)

    @property
    def input_range(self) -> tuple[float, float] | None:
        """The raw values the lattice's ends (its codes −128 and 127) stand for: what the int8 file's input is
        calibrated on, so that its scale and zero point are the lattice's (None off the lattice)."""
        ends = (-128 - self.zero_point, 127 - self.zero_point)
        return tuple(float(np.float32(end * self.unit)) for end in ends) if self.unit else None

    def snapped(self, biases: list) -> list:
        """On the lattice every output is an integer: a bias moved to the half-integer below the next one changes
        no feature and is half a unit from every output, so that no runtime's rounding flips one (and an int8
        file's bias, in 63rds of a unit, is on the same side of every output). float16 holds a half-integer
        exactly below 1024 units: a float16 file's larger biases may fall on an output (verify judges that file's
        mean difference, and leaves it out past its limit; on the eight UCR/UEA sets it agreed on 100%)."""
        return [np.floor(b) + 0.5 for b in biases] if self.unit else biases

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "channels": self.channels,
                "num_features": self.num_features, "seed": self.seed, "grid": self.grid, "saturate": self.saturate,
                "unit": self.unit, "zero_point": self.zero_point, "center": self.center, "masked": self.masked}


FEATURES = "minirocket"  # the features layer's name: what the closed-form fit reads
HEAD, HEAD_REST = "head", "head_rest"  # the two Dense layers whose kernels add up to the ridge's (split_kernel)


def build_rocket_classifier(input_shape: Sequence[int], num_classes: int, *, num_features: int = NUM_FEATURES,
                            series_scale: dict | None = None) -> keras.Model:
    """A window of a sequence → logits. The biases and the head are zeros until `fit` sets them from the train
    split."""
    if series_scale is None or not series_scale.get("classify"):
        raise BuildError("task", "rocket classifies sequences (a file of series with a class each); to forecast a "
                         "series use --task=dense, conv or recurrent")
    steps, channels = input_shape
    if (series_scale.get("each") or channels > 1) and series_scale.get("masked"):
        raise ValueError("series padded with missing values are read on the lattice only: one channel, one scale")
    if series_scale.get("each") or channels > 1:
        # Each series standardised by itself, or each channel by the train series' (one lattice would round a
        # channel 10³ times smaller than another to 0), then on GRID.
        window = Window(input_shape, series_scale)
        inputs, series, on = window.inputs, window.relative, {}
    else:  # one channel: the raw series on its train values' lattice (`lattice`)
        inputs = series = keras.Input(shape=tuple(input_shape), name=WINDOW)
        masked = bool(series_scale.get("masked"))  # padded past each series' end with NaN (data/sequences.py)
        unit, zero_point = lattice(series_scale["low"], series_scale["high"], missing=masked)
        on = {"unit": unit, "zero_point": zero_point, "center": round(float(np.mean(series_scale["mean"])) / unit),
              "masked": masked}
    found = MiniRocket(steps, channels, num_features, name=FEATURES, dtype="float32", **on)(series)
    head = layers.Dense(num_classes, name=HEAD, dtype="float32")(found)
    rest = layers.Dense(num_classes, use_bias=False, name=HEAD_REST, dtype="float32")(found)
    logits = layers.Add(name="logits", dtype="float32")([head, rest])
    return keras.Model(inputs, logits, name="minirocket_sequence_classifier")


def split_kernel(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[features, classes] → the kernel rounded to 8 bits per class (127 steps of its largest weight, symmetric, as
    a quantized Dense layer's per-channel weights are: exact in 8 bits) and what that rounding left (at most half a
    step, which 8 bits hold to 1/254 of it): they add up to `kernel`."""
    step = np.abs(kernel).max(axis=0, keepdims=True) / 127
    step = np.where(step > 0, step, 1.0)
    coarse = (np.round(kernel / step) * step).astype(kernel.dtype)
    return coarse, kernel - coarse


ALPHAS = np.logspace(-3, 3, 10)  # the ridge penalties cross-validated (the paper's and sktime's)
# The softmax's sharpness: from flat to 10 × a decision of ±1 (e^20 to 1). Not more: a feature is a step function,
# and a convolution output within float rounding of its bias flips it between two correct computations (batch
# sizes take different kernels); a larger scale would carry that flip to the logits past the float files' 1e-4.
TEMPERATURES = np.logspace(-1, 1, 21)


def fit(model: keras.Model, batches) -> dict:
    """Sets the biases and the head of a built rocket model from labelled windows (`batches`: an iterable of
    (window batch, label batch) NumPy pairs: every labelled series but the test split's); returns what was fitted.
    Deterministic: no gradient steps, no validation split held back (the ridge penalty is chosen by leave-one-out
    cross-validation, and the leave-one-out decisions fit the temperature)."""
    from sklearn.linear_model import RidgeClassifierCV
    rocket = model.get_layer(FEATURES)
    windows, labels = _stacked(batches)
    # On the lattice the layer reads the model's input itself (build_rocket_classifier): no pass to compute it.
    series = rocket.in_units(windows) if rocket.unit else _predicted(keras.Model(model.inputs, rocket.input), windows)
    valid = rocket.valid_steps(windows) if rocket.masked else None
    rocket.set_weights(rocket.snapped(fit_biases(series, rocket.steps, rocket.num_features, rocket.seed, valid)))
    found = _predicted(keras.Model(model.inputs, rocket.output), windows)
    spread = found.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    ridge = RidgeClassifierCV(alphas=ALPHAS).fit(found / spread, labels)
    head = model.get_layer(HEAD)
    kernel = np.zeros((found.shape[1], head.units), np.float32)
    bias = np.zeros(head.units, np.float32)
    known = ridge.classes_.astype(int)
    coef, intercept = np.atleast_2d(ridge.coef_), np.atleast_1d(ridge.intercept_)
    # Leave-one-out decisions at the chosen penalty, [n, decisions] (with a scoring, cv_results_ holds them).
    again = RidgeClassifierCV(alphas=[ridge.alpha_], scoring="accuracy", store_cv_results=True)
    held_out = again.fit(found / spread, labels).cv_results_.reshape(len(labels), -1)
    logits = np.zeros((len(labels), head.units))
    if len(coef) == 1:  # two classes, one decision: positive for the second
        known = known[1:]
    kernel[:, known] = (coef / spread).T
    bias[known] = intercept
    logits[:, known] = held_out
    temperature = _temperature(logits, labels)
    coarse, rest = split_kernel(kernel * temperature)
    head.set_weights([coarse, bias * temperature])
    model.get_layer(HEAD_REST).set_weights([rest])
    return {"alpha": float(ridge.alpha_), "temperature": temperature, "features": int(found.shape[1]),
            "examples": int(len(labels)),
            "train_accuracy": float(np.mean(np.argmax(found @ kernel + bias, 1) == labels)),
            "leave_one_out_accuracy": float(np.mean(np.argmax(logits, 1) == labels))}


def _predicted(model: keras.Model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """model.predict(x) in batches of one size: a last, smaller batch is traced again (0.55 s for GunPoint's
    features, more than computing them), so it is filled with copies of the first rows, whose outputs are dropped."""
    filled = np.concatenate([x, np.resize(x[:1], (-len(x) % batch_size, *x.shape[1:]))]) if len(x) else x
    return model.predict(filled, batch_size=batch_size, verbose=0)[:len(x)]


def _stacked(batches) -> tuple[np.ndarray, np.ndarray]:
    pairs = list(batches)
    if not pairs:
        return np.zeros((0,)), np.zeros((0,), np.int64)
    return np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs]).astype(np.int64)


def _temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The scale of the ridge decisions whose softmax has the smallest cross-entropy on held-out labels (a ridge
    decision is not a log-probability: this makes its softmax one, without changing the argmax)."""
    def loss(t):
        z = t * logits
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -np.mean(log_p[np.arange(len(labels)), labels])
    return float(min(TEMPERATURES, key=loss))
