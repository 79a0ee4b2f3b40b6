"""Block-scaled formats: bytes with their scales, by hand and in sweeps; the peaks they run at; refusals."""

from __future__ import annotations

import math

import pytest
from one_line import one_line_error

import rooflax
from rooflax.cli.commands import main
from rooflax.config.dtypes import FORMATS
from rooflax.cost.ops import make_steps, model_costs
from rooflax.cost.shape import Shape

# Llama-3-8B's gate_proj, 4096 → 14336: a weight of 14336 rows (outputs) × 4096 (the reduction,
# blocked) and 14336·4096 = 58_720_256 elements.
K, N = 4096, 14336


@pytest.mark.parametrize(
    "name, rows, cols, expected",
    [
        ("fp8", N, K, 58_720_256),  # one byte an element, the per-tensor scale not counted
        ("fp8_block_weight", N, K, 58_720_256 + 112 * 32 * 4),  # (14336/128)·(4096/128) fp32 scales
        ("fp8_block_act", 8, K, 8 * 4096 + 8 * 32 * 4),  # 8 tokens, 32 blocks of 1×128 each
        ("nvfp4", N, K, 58_720_256 // 2 + N * 256),  # half a byte an element, an e4m3 byte per 16
        ("mxfp4", N, K, 58_720_256 // 2 + N * 128),  # an e8m0 byte per 32
        ("nvfp4", 1, 17, 8.5 + 2),  # a partial block still holds a whole scale
        ("fp8_block_weight", 8, K, 8 * 4096 + 1 * 32 * 4),  # 8 rows of a 128-row block: one block row
    ],
)
def test_tensor_bytes_by_hand(name, rows, cols, expected):
    assert FORMATS[name].tensor_bytes(rows, cols) == expected


def test_bytes_per_element_by_hand():
    per_element = {name: fmt.bytes_per_element for name, fmt in FORMATS.items()}
    assert per_element == {
        "fp8": 1,
        "fp8_block_weight": 1 + 4 / 16384,
        "fp8_block_act": 1 + 4 / 128,
        "nvfp4": 0.5 + 1 / 16,
        "mxfp4": 0.5 + 1 / 32,
    }
    policies = {n: (rooflax.get_dtype(n).weight_bytes, rooflax.get_dtype(n).act_bytes) for n in ("nvfp4", "w4a8")}
    assert policies == {"nvfp4": (0.5625, 0.5625), "w4a8": (0.53125, 1)}
    assert rooflax.get_dtype("bf16", "nvfp4").kv_bytes == 0.5625


# weight format, activation format of each block-scaled policy
POLICY_FORMATS = {
    "fp8": ("fp8", "fp8"),
    "fp8_block": ("fp8_block_weight", "fp8_block_act"),
    "nvfp4": ("nvfp4", "nvfp4"),
    "mxfp4": ("mxfp4", "mxfp4"),
    "w4a8": ("mxfp4", "fp8"),
}


@pytest.mark.parametrize("dtype", list(POLICY_FORMATS))
def test_sweep_bytes_are_the_formula_with_scales(dtype):
    # gate_proj at 8 tokens reads its weight and input and writes its output, each in its format
    weight, act = (FORMATS[f] for f in POLICY_FORMATS[dtype])
    expected = weight.tensor_bytes(N, K) + act.tensor_bytes(8, K) + act.tensor_bytes(8, N)
    df = rooflax.sweep(model="llama-3-8b", hardware="b200", dtype=dtype, phases=["decode"], batch=[8], seq_len=[1024])
    assert df.filter(op="gate_proj")["bytes"].to_list() == [expected]
    if dtype == "nvfp4":  # the same, by hand: 33_030_144 of weight, 18_432 in, 64_512 out
        assert expected == 33_030_144 + (8 * 4096 // 2 + 8 * 256) + (8 * 14336 // 2 + 8 * 896) == 33_113_088


def test_nvfp4_kv_cache_bytes_by_hand():
    # qk in decode: a·B·H·Q·d + k·B·G·T·d + a·B·H·Q·T, the cache in nvfp4 blocks of 16 along d = 128
    ops = rooflax.evaluate(model="llama-3-8b", hardware="b200", dtype="bf16", kv_dtype="nvfp4", batch=2, seq_len=1024)
    cache = FORMATS["nvfp4"].tensor_bytes(2 * 8 * 1024, 128)  # B·G·T vectors of d elements
    assert cache == 2 * 8 * 1024 * (64 + 8)
    assert ops.ops["qk"].bytes == 2 * 2 * 32 * 128 + cache + 2 * 2 * 32 * 1024


def _weight_shapes(model):
    """``(rows, cols)`` = ``(n, k)`` of every weight product of a layer and the LM head."""
    steps = make_steps(Shape.of(model, rooflax.get_dtype("bf16"), phase="decode", batch=1, seq_len=1))
    costs = model_costs(steps)
    return [(int(g.n), int(g.k)) for step, op, _, _ in costs if op.group != "qk/pv" for g in op.gemms(step)]


def _off_by(fmt, rows, cols):
    """Exact bytes minus the per-element count, and the bound the dtypes module states for it."""
    off = fmt.tensor_bytes(rows, cols) - rows * cols * fmt.bytes_per_element
    br, bc = fmt.block
    return off, (rows / br + cols / bc + 1) * fmt.scale_bytes


#: The presets whose every blocked width is whole blocks of 128, 16 and 32, but a router's expert count.
WHOLE_BLOCKS_BUT_THE_ROUTER = (
    "llama-2-70b",
    "llama-3-8b",
    "llama-3.1-405b",
    "mixtral-8x7b",
    "qwen3-235b-a22b",
    "toy-llama",
)


@pytest.mark.parametrize("name", sorted(rooflax.MODELS))
def test_preset_dims_are_whole_blocks_or_within_the_bound(name):
    model = rooflax.MODELS[name]
    inexact = []
    for rows, cols in _weight_shapes(model):
        tensors = [("fp8_block_weight", rows, cols), ("nvfp4", rows, cols), ("mxfp4", rows, cols)]
        tensors += [(f, 1, width) for f in ("fp8_block_act", "nvfp4", "mxfp4") for width in (rows, cols)]
        for fmt, r, c in tensors:
            off, bound = _off_by(FORMATS[fmt], r, c)
            assert 0 <= off < bound
            if off:
                inexact.append((fmt, r, c))
    kv_off, _ = _off_by(FORMATS["nvfp4"], 1, model.head_dim)
    assert kv_off == 0  # the cache's vectors are whole blocks of 16
    # in the Llama-era presets only a router's expert count (8, 60) is not whole blocks (its weight's rows,
    # its logits' width); the newer ones have widths of no whole 128-blocks (gpt-oss 2880, MLA's 576-wide
    # latent, Gemma 3's 262208 vocabulary, Llama 4's 16 experts), within the bound above
    if name in WHOLE_BLOCKS_BUT_THE_ROUTER:
        assert all(model.experts in (r, c) for _, r, c in inexact), inexact


def test_llama_and_mixtral_presets_are_exact_but_the_router():
    assert all(
        _off_by(FORMATS[f], r, c)[0] == 0
        for r, c in _weight_shapes(rooflax.MODELS["llama-3-8b"])
        for f in ("fp8_block_weight", "nvfp4", "mxfp4")
    )
    router = FORMATS["fp8_block_weight"].tensor_bytes(8, 4096)  # mixtral's router: 8 experts, 1 block row
    assert router == 8 * 4096 + 32 * 4 and router - 8 * 4096 * (1 + 4 / 16384) == 120


@pytest.mark.parametrize(
    "hardware, dtype, peak",
    [
        ("b200", "nvfp4", 9000e12),
        ("b200", "mxfp4", 9000e12),
        ("gb200", "nvfp4", 10000e12),
        ("b300", "nvfp4", 13500e12),
        ("mi355x", "mxfp4", 10066.3e12),
        ("h100-sxm", "w4a8", 1978.9e12),
        ("h100-sxm", "fp8_block", 1978.9e12),
    ],
)
def test_formats_run_at_their_peak(hardware, dtype, peak):
    # a prefill product of 32k tokens is compute-bound: its ideal time is its FLOPs over the peak
    op = rooflax.evaluate(model="llama-3-8b", hardware=hardware, dtype=dtype, phase="prefill", batch=8, seq_len=4096)
    gate = op.ops["gate_proj"]
    assert gate.bound == "compute" and gate.time_s == pytest.approx(gate.flops / peak, rel=1e-12)


A100_HAS = "a100-80gb-sxm has fp32, tf32, fp16, bf16, int8"


@pytest.mark.parametrize(
    "hardware, dtype, message",
    [
        (
            "a100-80gb-sxm",
            "nvfp4",
            f"dtype: nvfp4 needs FP4 tensor cores with NVFP4 block scales (e4m3 per 16); {A100_HAS}",
        ),
        ("a100-80gb-sxm", "w4a8", f"dtype: w4a8 needs FP8 tensor cores; {A100_HAS}"),
        ("mi355x", "nvfp4", "dtype: nvfp4 needs FP4 tensor cores with NVFP4 block scales (e4m3 per 16); mi355x has "),
        ("h100-sxm", "mxfp4", "dtype: mxfp4 needs FP4 tensor cores with MX block scales (e8m0 per 32); h100-sxm has "),
        ("tpu-v5e", "fp16", "dtype: fp16 needs FP16 tensor cores; tpu-v5e has bf16, int8"),
    ],
)
def test_a_dtype_the_part_cannot_run_is_one_line(hardware, dtype, message, capsys):
    keys = dict(model="llama-3-8b", hardware=hardware, dtype=dtype)
    one_line_error(lambda: rooflax.parse_spec(**keys, batch=[1], seq_len=[8]), message)
    one_line_error(lambda: rooflax.evaluate(**keys, batch=1, seq_len=8), message)
    argv = ["crossover", "--model", "llama-3-8b", "--hardware", hardware, "--dtype", dtype, "--seq-len", "8"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_an_nvl72_domain_holds_72_gpus():
    keys = dict(model="mixtral-8x7b", hardware="gb200", batch=[8], seq_len=[512], phases=["decode"])
    assert rooflax.sweep(**keys, tp=[8], ep=[8], summary=True).height == 1  # 64 GPUs
    message = "tp×pp×ep: 8×2×8 = 128 devices exceed gb200's interconnect domain of 72 (interconnect_gpus)"
    one_line_error(lambda: rooflax.sweep(**keys, tp=[8], pp=[2], ep=[8]), message)
    one_line_error(
        lambda: rooflax.evaluate(model="mixtral-8x7b", hardware="gb200", batch=8, seq_len=8, tp=8, pp=16),
        "= 128 devices",
    )
    assert rooflax.get_hardware("h100-sxm").interconnect_gpus is None  # presets of 8-GPU boards: no limit


def test_scale_bytes_never_exceed_the_elements():
    for fmt in FORMATS.values():
        assert fmt.bytes_per_element >= fmt.element_bytes
        assert math.isclose(fmt.tensor_bytes(128, 128), 128 * 128 * fmt.bytes_per_element)
