"""An independent integer reference of the counting contract (DESIGN.md), for the tests.

Written from the contract's table, not from rooflax.cost.ops: plain Python integers, with
byte sizes in quarter-bytes avoided by keeping w, a, k as Fractions.
"""

from __future__ import annotations

from fractions import Fraction


def reference_costs(*, B, S, phase, K, h, H, G, d, I, V, w, a, k, causal=False, fused=False, gated=True):
    """{op: (flops, bytes)} for one layer plus lm_head, exact."""
    w, a, k = Fraction(w), Fraction(a), Fraction(k)
    Q = {"prefill": S, "decode": 1, "verify": K}[phase]
    T = S
    M = B * Q
    if causal:
        P = sum(T - Q + i + 1 for i in range(Q))
    else:
        P = Q * T

    def linear(m, kin, nout):
        return 2 * m * kin * nout, w * kin * nout + a * m * kin + a * m * nout

    out = {}
    out["attn_norm"] = (4 * M * h, 2 * a * M * h + a * h)
    qkv_f, _ = linear(M, h, (H + 2 * G) * d)
    out["qkv_proj"] = (qkv_f, w * h * (H + 2 * G) * d + a * M * h + a * M * H * d + k * M * 2 * G * d)
    out["rotary"] = (3 * M * (H + G) * d, 2 * a * M * H * d + 2 * k * M * G * d + a * Q * d)
    qk = (2 * B * H * P * d, a * B * H * Q * d + k * B * G * T * d + a * B * H * P)
    sm = (5 * B * H * P, 2 * a * B * H * P)
    pv = (2 * B * H * P * d, a * B * H * P + k * B * G * T * d + a * B * H * Q * d)
    if fused:
        out["attention"] = (qk[0] + sm[0] + pv[0], 2 * a * B * H * Q * d + 2 * k * B * G * T * d)
    else:
        out["qk"], out["softmax"], out["pv"] = qk, sm, pv
    out["o_proj"] = linear(M, H * d, h)
    out["attn_residual"] = (M * h, 3 * a * M * h)
    out["mlp_norm"] = out["attn_norm"]
    if gated:
        out["gate_proj"] = linear(M, h, I)
        out["silu_mul"] = (5 * M * I, 3 * a * M * I)
    else:
        out["silu"] = (4 * M * I, 2 * a * M * I)
    out["up_proj"] = linear(M, h, I)
    out["down_proj"] = linear(M, I, h)
    out["mlp_residual"] = (M * h, 3 * a * M * h)
    out["lm_head"] = linear(B * (K if phase == "verify" else 1), h, V)
    return out
