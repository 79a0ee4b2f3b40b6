"""What drafting costs in a speculative round: Medusa heads and multi-token prediction as ops, and the draft-model rule.

**Medusa heads** (Cai et al. 2024, §2.1.1): head ``i`` is one residual block of width
``h`` with a SiLU, ``x + SiLU(W₁ x)``, followed by an LM head ``h → V``. They run on the
last hidden state of each sequence, ``B`` tokens, all heads in one forward: one kernel per
op below, each batched over the ``n`` heads used. Per head:

=============  =============  ==========================  ================================================
op             group          flops                       bytes
=============  =============  ==========================  ================================================
medusa_block   up/gate/down   ``2·B·h·h``                 ``w·h·h + a·B·h + a·B·h``
medusa_silu    elementwise    ``4·B·h``                   ``2·a·B·h``
medusa_add     elementwise    ``B·h``                     ``3·a·B·h``
medusa_lm_head lm_head        ``2·B·h·V``                 ``w·h·V + a·B·h + a·B·V``
=============  =============  ==========================  ================================================

With ``shared_lm_head`` the heads reuse the base model's LM head: its weights are read
once for all heads (one product of ``n·B`` rows), ``w·h·V + n·(a·B·h + a·B·V)`` bytes.
A round that drafts ``K`` tokens uses ``n = K`` heads (a chain takes the top choice of
heads ``1..K``; a tree of depth ``K + 1`` takes choices from heads ``1..K``).

**Multi-token prediction** (DeepSeek-V3 technical report, arXiv 2412.19437, §2.2): module
``k`` takes the previous depth's hidden state and the next token's embedding, each through an
RMSNorm, concatenates them and projects ``2h → h`` (``M_k``), runs one decoder layer and the
model's own output head. A round drafting ``K`` tokens runs modules ``1..K`` one after
another at the target's batch and layout: each is a decode step of a one-layer model of the
target's last layer kind (:meth:`rooflax.Model.mtp_model`: its layer and the shared LM head,
priced by the engine as any decode step) plus these ops, on ``B`` tokens a device:

=============  =============  ==========================  ================================================
op             group          flops                       bytes
=============  =============  ==========================  ================================================
mtp_norms      elementwise    ``8·B·h``                   ``4·a·B·h + 2·a·h`` (two RMSNorms)
mtp_eh_proj    up/gate/down   ``2·B·2h·h``                ``w·2h·h + a·B·2h + a·B·h``
=============  =============  ==========================  ================================================

**A draft model** runs ``K`` decode steps per round at the target's batch. Its steps
run at sequence lengths ``S − K … S − 1`` (the verify step's ``seq_len`` is ``S``);
rooflax prices each at ``S``, from the same summary sweep as the target's decode. A
step's cost does not decrease with ``seq_len``, so this is an upper bound, off by the
attention over at most ``K`` more cached tokens per step.

**Memory**: the drafter's weights sit beside the target's on the fullest device
(:func:`medusa_weight_bytes` for heads: every head's block and LM head, ``n·w·h·(h + V)``,
or ``n·w·h·h`` with a shared LM head; a draft model: its own decode step's memory, weights,
KV cache and activations; multi-token prediction: its modules' weights,
:attr:`rooflax.Model.mtp_params`, and their KV cache).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rooflax.config.dtypes import tensor_bytes
from rooflax.cost.achieved import Gemm
from rooflax.cost.ops import OpDef
from rooflax.cost.roofline import Roof, op_achieved_time
from rooflax.names import GROUPS

__all__ = [
    "MEDUSA_OPS",
    "MTP_OPS",
    "HeadStep",
    "MtpStep",
    "medusa_costs",
    "medusa_times",
    "medusa_weight_bytes",
    "mtp_times",
]

Num = Any


class HeadStep(NamedTuple):
    """The symbols of one Medusa forward: ``n`` heads on ``B`` tokens of width ``h`` into ``V``."""

    batch: Num  # B
    hidden: Num  # h
    vocab: Num  # V
    heads: Num  # n, heads used
    w: Num
    a: Num
    shared_lm_head: bool


def _rows(s: HeadStep | MtpStep, width: Num, tokens: Num) -> Num:
    """``tokens`` activation rows of ``width``, each blocked along it."""
    return tensor_bytes(s.a, 1, width, tokens)


def _block(s: HeadStep) -> tuple[Num, Num]:
    return 2 * s.heads * s.batch * s.hidden * s.hidden, s.heads * (
        tensor_bytes(s.w, s.hidden, s.hidden) + 2 * _rows(s, s.hidden, s.batch)
    )


def _silu(s: HeadStep) -> tuple[Num, Num]:
    elements = s.heads * s.batch * s.hidden
    return 4 * elements, 2 * _rows(s, s.hidden, s.heads * s.batch)


def _add(s: HeadStep) -> tuple[Num, Num]:
    elements = s.heads * s.batch * s.hidden
    return elements, 3 * _rows(s, s.hidden, s.heads * s.batch)


def _lm_head(s: HeadStep) -> tuple[Num, Num]:
    flops = 2 * s.heads * s.batch * s.hidden * s.vocab
    activations = _rows(s, s.hidden, s.heads * s.batch) + _rows(s, s.vocab, s.heads * s.batch)
    weight_reads = 1 if s.shared_lm_head else s.heads
    return flops, tensor_bytes(s.w, s.vocab, s.hidden, weight_reads) + activations


def _lm_head_gemm(s: HeadStep) -> tuple[Gemm, ...]:
    if s.shared_lm_head:
        return (Gemm(1, s.heads * s.batch, s.vocab, s.hidden),)
    return (Gemm(s.heads, s.batch, s.vocab, s.hidden),)


def _block_gemm(s: HeadStep) -> tuple[Gemm, ...]:
    return (Gemm(s.heads, s.batch, s.hidden, s.hidden),)


MEDUSA_OPS: tuple[OpDef[HeadStep], ...] = (
    OpDef(name="medusa_block", group="up/gate/down", cost=_block, gemms=_block_gemm),
    OpDef(name="medusa_silu", group="elementwise", cost=_silu),
    OpDef(name="medusa_add", group="elementwise", cost=_add),
    OpDef(name="medusa_lm_head", group="lm_head", cost=_lm_head, gemms=_lm_head_gemm),
)


class MtpStep(NamedTuple):
    """The symbols of a multi-token prediction module's own ops: ``B`` tokens of width ``h``."""

    batch: Num  # B, a device's sequences
    hidden: Num  # h
    w: Num
    a: Num


def _mtp_norms(s: MtpStep) -> tuple[Num, Num]:
    elements = s.batch * s.hidden
    return 8 * elements, 4 * _rows(s, s.hidden, s.batch) + 2 * _rows(s, s.hidden, 1)


def _mtp_eh_proj(s: MtpStep) -> tuple[Num, Num]:
    h, m = s.hidden, s.batch
    return 2 * m * 2 * h * h, tensor_bytes(s.w, h, 2 * h) + _rows(s, 2 * h, m) + _rows(s, h, m)


def _mtp_eh_gemm(s: MtpStep) -> tuple[Gemm, ...]:
    return (Gemm(1, s.batch, s.hidden, 2 * s.hidden),)


MTP_OPS: tuple[OpDef[MtpStep], ...] = (
    OpDef(name="mtp_norms", group="elementwise", cost=_mtp_norms),
    OpDef(name="mtp_eh_proj", group="up/gate/down", cost=_mtp_eh_proj, gemms=_mtp_eh_gemm),
)


def _forward_times(ops: tuple[OpDef[Any], ...], step: Any, roof: Roof) -> tuple[Num, Num, Num, Num]:
    """Ideal and predicted achieved seconds of ``ops`` run one after another on ``step``: each op at its own
    roof (``max(flops/peak, bytes/bandwidth)``) and below it (:func:`rooflax.cost.roofline.op_achieved_time`),
    and the achieved time's band ends (each op's time at its group's band factors; NaN without a band)."""
    ideal: Num = 0.0
    achieved: Num = 0.0
    low: Num = 0.0
    high: Num = 0.0
    for op in ops:
        flops, bytes_ = op.cost(step)
        g = GROUPS.index(op.group)
        ideal = ideal + np.maximum(flops / roof.peak, bytes_ / roof.bandwidth)
        time = op_achieved_time(op, step, flops, bytes_, roof, xp=np)
        achieved = achieved + time
        low, high = low + time * roof.band_low[g], high + time * roof.band_high[g]
    return ideal, achieved, low, high


def mtp_times(step: MtpStep, roof: Roof) -> tuple[Num, Num, Num, Num]:
    """Ideal and predicted achieved seconds of one module's own ops (:data:`MTP_OPS`), and the achieved
    time's band ends (NaN without a band), numpy arrays or numbers.

    >>> from rooflax import get_dtype, get_hardware
    >>> ideal, *_ = mtp_times(MtpStep(batch=1, hidden=7168, w=1, a=2), Roof.of(get_hardware("h200"), get_dtype("fp8")))
    >>> round(float(ideal) * 1e6, 2)  # 2·7168² weight bytes at 4.8 TB/s, and two norms
    21.44
    """
    return _forward_times(MTP_OPS, step, roof)


def medusa_costs(step: HeadStep) -> dict[str, tuple[Num, Num]]:
    """``{op: (flops, bytes)}`` of one Medusa forward (every head used), on numbers or arrays.

    >>> c = medusa_costs(HeadStep(batch=1, hidden=4, vocab=10, heads=2, w=2, a=2, shared_lm_head=False))
    >>> c["medusa_block"], c["medusa_lm_head"]
    ((64, 96), (160, 216))
    """
    return {op.name: op.cost(step) for op in MEDUSA_OPS}


def medusa_times(step: HeadStep, roof: Roof) -> tuple[Num, Num, Num, Num]:
    """Ideal and predicted achieved seconds of one Medusa forward, and the achieved time's error band
    (numpy arrays or numbers).

    Each op runs at its own roof (``max(flops/peak, bytes/bandwidth)``) and below it
    (:func:`rooflax.cost.roofline.op_achieved_time`); the band's ends take each op at its
    group's band factors (``roof.band_low``, ``roof.band_high``; NaN without a band), as a
    summary frame's do. With no heads used all four are exactly 0.
    """
    used = np.asarray(step.heads) > 0
    step = step._replace(heads=np.maximum(step.heads, 1))  # rounds with no heads are zeroed below
    times = _forward_times(MEDUSA_OPS, step, roof)
    ideal, achieved, low, high = (np.where(used, value, 0.0) for value in times)
    return ideal, achieved, low, high


def medusa_weight_bytes(heads: int, hidden: Num, vocab: Num, w: Num, shared_lm_head: bool) -> Num:
    """Bytes of the weights of ``heads`` Medusa heads in the format ``w``: each block ``h × h``, each own LM
    head ``V × h``.

    >>> medusa_weight_bytes(2, hidden=4, vocab=10, w=2, shared_lm_head=False)
    224
    """
    own_head = 0 if shared_lm_head else tensor_bytes(w, vocab, hidden)
    return heads * (tensor_bytes(w, hidden, hidden) + own_head)
