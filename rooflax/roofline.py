"""Roofline arithmetic and model totals, on Python numbers or jnp arrays alike.

Per op: ``intensity = flops / bytes``; ``attainable = min(peak, bandwidth · intensity)``;
``time = max(flops / peak, bytes / bandwidth)``; compute-bound where
``intensity ≥ peak / bandwidth``.

Per configuration and phase (DESIGN.md, "Model totals"): ``L · Σ layer ops + lm_head``
for flops, bytes and time (each op at its own roof); ``tokens_per_s = B·Q / time``
(prompt tokens per second in prefill, generated tokens per second in decode, verified
draft tokens per second in verify); memory = weights + KV cache + peak activations.
"""

from __future__ import annotations

from typing import Any

from rooflax.models import parameter_count
from rooflax.ops import Step

__all__ = ["activation_bytes", "attainable", "intensity", "is_compute_bound", "kv_cache_bytes", "model_totals",
           "op_time"]

Num = Any


def intensity(flops: Num, bytes_: Num) -> Num:
    """Operational intensity in FLOP/byte."""
    return flops / bytes_


def attainable(flops: Num, bytes_: Num, peak: Num, bandwidth: Num, minimum=min) -> Num:
    """Attainable FLOP/s: ``min(peak, bandwidth · intensity)``; pass ``jnp.minimum`` for arrays."""
    return minimum(peak, bandwidth * (flops / bytes_))


def op_time(flops: Num, bytes_: Num, peak: Num, bandwidth: Num, maximum=max) -> Num:
    """Lower bound on run time in seconds: ``max(flops / peak, bytes / bandwidth)``."""
    return maximum(flops / peak, bytes_ / bandwidth)


def is_compute_bound(flops: Num, bytes_: Num, peak: Num, bandwidth: Num) -> Num:
    """True where the op sits at or right of the ridge, ``intensity ≥ peak / bandwidth``.

    Compared as ``flops · bandwidth ≥ peak · bytes`` so that the flip is exact at the ridge.
    """
    return flops * bandwidth >= peak * bytes_


def kv_cache_bytes(s: Step, layers: Num) -> Num:
    """KV cache held after the step: ``k · 2 · G · d · L · B · S``."""
    return s.k * 2 * s.kv_heads * s.head_dim * layers * s.batch * s.seq_len


def activation_bytes(s: Step, *, gated_mlp: bool, fused_attention: bool, maximum=max) -> Num:
    """Peak live activations of one layer (layers run one after another), in bytes.

    The largest of: the residual stream plus the QKV output, ``M·(h + (H+2G)d)``; the
    residual stream plus scores and probabilities, ``M·h + 2·B·H·P`` (``M·h + B·H·Q·d``
    fused); the residual stream plus the MLP's inner tensors, ``M·(h + 3I)`` gated
    (``M·(h + 2I)`` not); and the logits, ``B·V`` (``B·K·V`` in verify); times ``a``.
    """
    m, h = s.tokens, s.hidden
    qkv = m * (h + (s.heads + 2 * s.kv_heads) * s.head_dim)
    if fused_attention:
        attn = m * h + s.batch * s.heads * s.new * s.head_dim
    else:
        attn = m * h + 2 * s.batch * s.heads * s.pairs
    mlp = m * (h + (3 if gated_mlp else 2) * s.intermediate)
    logits = s.logits_tokens * s.vocab
    return s.a * maximum(maximum(qkv, attn), maximum(mlp, logits))


def model_totals(s: Step, *, layer: tuple[Num, Num, Num], head: tuple[Num, Num, Num], layers: Num,
                 gated_mlp: bool, tied_embeddings: bool, fused_attention: bool, memory_capacity: Num,
                 maximum=max) -> dict:
    """Totals of one configuration and phase (DESIGN.md, "Model totals").

    Args:
        s: the step.
        layer: the flops, bytes and time of one layer's ops, each summed.
        head: the flops, bytes and time of ``lm_head`` (once per model).
        layers: ``L``.
        gated_mlp, tied_embeddings, fused_attention: the model's and sweep's structure.
        memory_capacity: device memory in bytes, for ``fits_in_memory``.
        maximum: ``max`` for Python numbers, ``jnp.maximum`` for arrays.

    Returns:
        ``flops``, ``bytes``, ``intensity``, ``time_s``, ``tokens_per_s`` (``B·Q/time``),
        ``weight_bytes`` (``w`` × parameters), ``kv_cache_bytes``, ``activation_bytes``,
        ``memory_bytes`` (their sum) and ``fits_in_memory``.
    """
    flops, bytes_, time_s = (layers * part + whole for part, whole in zip(layer, head, strict=True))
    weights = s.w * parameter_count(hidden=s.hidden, layers=layers, heads=s.heads, kv_heads=s.kv_heads,
                                    head_dim=s.head_dim, intermediate=s.intermediate, vocab=s.vocab,
                                    gated_mlp=gated_mlp, tied_embeddings=tied_embeddings)
    kv = kv_cache_bytes(s, layers)
    acts = activation_bytes(s, gated_mlp=gated_mlp, fused_attention=fused_attention, maximum=maximum)
    memory = weights + kv + acts
    return {"flops": flops, "bytes": bytes_, "intensity": flops / bytes_, "time_s": time_s,
            "tokens_per_s": s.tokens / time_s, "weight_bytes": weights, "kv_cache_bytes": kv,
            "activation_bytes": acts, "memory_bytes": memory, "fits_in_memory": memory <= memory_capacity}
