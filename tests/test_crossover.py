"""Crossovers: hand-derived values, agreement with evaluate at the crossover and below it, bad input."""

from __future__ import annotations

import importlib
import math
from fractions import Fraction
from pathlib import Path

import jax
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from one_line import one_line_error

import rooflax
from rooflax.answers.crossover import LIMIT, crossover_table
from rooflax.cli.commands import main
from rooflax.config.models import llama_intermediate
from rooflax.cost.ops import ONCE, layer_ops

ROOT = Path(__file__).parent.parent
crossover_module = importlib.import_module("rooflax.answers.crossover")  # the module; rooflax.crossover is the function
A40 = rooflax.get_hardware("a40")
PEAK, BW = Fraction(A40.peak("fp16")), Fraction(A40.bandwidth_bytes_per_s)


def _decode(**keys) -> pl.DataFrame:
    return rooflax.crossover(
        **{"model": "llama-13b", "hardware": "a40", "dtype": "fp16", "phases": ["decode"], "seq_len": [2048], **keys}
    )


def _value(df: pl.DataFrame, column: str = "crossover", **where):
    rows = df.filter(**where)
    assert rows.height == 1, rows
    return rows.get_column(column)[0]


@pytest.mark.slow
def test_decode_linear_ops_of_llama13b_on_the_a40_by_hand():
    # A linear op K → N on M = B tokens (decode: one token per sequence) is compute-bound when
    #   2·M·K·N·bw ≥ peak·(w·K·N + a·M·K + a·M·N)   ⇔   M·(2·K·N·bw − peak·a·(K + N)) ≥ peak·w·K·N
    #   ⇔ M ≥ peak·w·K·N / (2·K·N·bw − peak·a·(K + N)),  w = a = 2 bytes in fp16.
    # up_proj (K = 5120, N = 13824): 149.7e12·2·70,778,880 / (2·70,778,880·696e9 − 149.7e12·2·18,944)
    #   = 2.11912e22 / 9.28520e19 = 228.23…, so the smallest batch is 229.
    # qkv_proj writes Q as activations and K, V to the cache, all 2 bytes here: its bytes are
    #   w·h·(H+2G)d + M·2·(h + Hd + 2Gd) = 2·5120·15360 + M·2·20480, and flops 2·M·5120·15360.
    def smallest(kn, per_token_bytes):
        return math.ceil(PEAK * 2 * kn / (2 * kn * BW - PEAK * per_token_bytes))

    expected = {
        "up_proj": smallest(5120 * 13824, 2 * (5120 + 13824)),
        "gate_proj": smallest(5120 * 13824, 2 * (5120 + 13824)),
        "down_proj": smallest(13824 * 5120, 2 * (13824 + 5120)),
        "o_proj": smallest(5120 * 5120, 2 * (5120 + 5120)),
        "lm_head": smallest(5120 * 32000, 2 * (5120 + 32000)),
        "qkv_proj": smallest(5120 * 15360, 2 * 20480),
    }
    assert expected["up_proj"] == 229
    df = _decode()
    for op, batch in expected.items():
        assert _value(df, op=op) == batch, op
    up = df.filter(op="up_proj")
    kn, kpn = 5120 * 13824, 5120 + 13824
    assert up.get_column("intensity_at")[0] == pytest.approx(2 * 229 * kn / (2 * kn + 2 * 229 * kpn), rel=1e-15)
    assert up.get_column("intensity_below")[0] == pytest.approx(2 * 228 * kn / (2 * kn + 2 * 228 * kpn), rel=1e-15)
    assert up.get_column("ridge")[0] == pytest.approx(149.7e12 / 696e9)


@pytest.mark.slow
def test_decode_attention_never_turns_compute_bound_along_batch():
    # qk in decode: flops 2·B·H·S·d, bytes B·(a·H·d + k·G·S·d + a·H·S): both proportional to B,
    # so the intensity is the same at every batch, 2·40·2048·128 / (2·(40·128 + 40·2048·128 + 40·2048))
    # ≈ 0.99 FLOP/byte for Llama-13B, far below the A40's 215.
    for model in ("llama-13b", "llama-3-8b", "toy-llama"):
        df = rooflax.crossover(model=model, phases=["decode"], seq_len=[128, 4096])
        attention = df.filter(pl.col("op").is_in(["qk", "pv", "softmax"]))
        assert attention.height == 6 and attention.get_column("crossover").null_count() == 6
        assert attention.get_column("intensity_at").null_count() == 6
        for op in ("qk", "pv"):
            for batch in (1, LIMIT):
                assert (
                    rooflax.evaluate(model=model, phase="decode", batch=batch, seq_len=4096)["ops"][op]["bound"]
                    == "memory"
                )


def _legal_below(
    value: int, along: str, model: rooflax.Model, spec_k: int | None, phase: str, tp: int = 1
) -> int | None:
    """The largest legal value of ``along`` below ``value``, derived from the rules, not from the code.

    Along ``hidden``: the widths below ``value``, one head_dim at a time, that the model scales
    to (``check_hidden``) and that ``tp`` splits (``tp_fits`` of the scaled model), or its own.
    """
    if along == "hidden":
        for h in range((value - 1) // model.head_dim * model.head_dim, 0, -model.head_dim):
            try:
                scaled = model.at_hidden(h)
            except rooflax.SpecError:
                continue
            if h == model.hidden or scaled.tp_fits(tp):
                return h
        return None
    lowest = spec_k if along == "seq_len" and phase == "verify" else 1
    return value - 1 if value - 1 >= lowest else None


CASES = [
    (
        "batch",
        dict(
            model="llama-13b", hardware="a40", phases=["prefill", "decode", "verify"], seq_len=[16, 2048], spec_k=[16]
        ),
    ),
    (
        "batch",
        dict(
            model="llama-3-8b",
            hardware="h100-sxm",
            dtype="w4a16",
            kv_dtype="fp8",
            phases=["decode", "verify"],
            seq_len=[64, 8192],
            spec_k=[4, 48],
            causal=True,
        ),
    ),
    (
        "seq_len",
        dict(
            model="llama-2-70b",
            hardware=["a100-80gb-sxm", "l4"],
            dtype=["bf16", "int8"],
            phases=["prefill", "decode", "verify"],
            batch=[1, 64],
            spec_k=[8],
            fused_attention=True,
        ),
    ),
    (
        "seq_len",
        dict(
            model="toy-llama",
            hardware="mi300x",
            dtype="fp8",
            phases=["prefill", "verify"],
            batch=[1, 2**20],
            spec_k=[3],
            causal=True,
            fused_attention=True,
        ),
    ),
    (
        "hidden",
        dict(
            model=["llama-13b", "llama-3-8b", "toy-llama"],
            hardware="a40",
            phases=["prefill", "decode", "verify"],
            batch=[1, 32, 256],
            seq_len=[32, 4096],
            spec_k=[32],
        ),
    ),
    # mixtures of experts (router, routed experts: the experts touched grow with the tokens) under tp and ep
    (
        "batch",
        dict(
            model=["mixtral-8x7b", "qwen1.5-moe-a2.7b"],
            hardware="h100-sxm",
            phases=["prefill", "decode", "verify"],
            seq_len=[16, 2048],
            spec_k=[8],
            tp=[1, 2],
            ep=[1, 2],
        ),
    ),
    (
        "seq_len",
        dict(
            model="mixtral-8x7b",
            hardware="a40",
            phases=["prefill", "decode"],
            batch=[1, 5, 64],
            ep=[1, 8],
            fused_attention=True,
        ),
    ),
    # dense layouts: heads, KV heads, MLP and vocabulary split tp ways, layers over pp stages
    (
        "seq_len",
        dict(
            model="llama-2-70b",
            hardware=["h100-sxm", "a40"],
            phases=["prefill", "decode", "verify"],
            batch=[1, 3, 64],
            spec_k=[16],
            tp=[1, 8],
            pp=[1, 2],
            causal=True,
        ),
    ),
    # widths that tp splits: multiples of head_dim·group·tp, and the narrow ones of replicated KV heads
    (
        "hidden",
        dict(
            model=["llama-2-70b", "llama-13b", "toy-llama"],
            hardware="h100-sxm",
            phases=["prefill", "decode"],
            batch=[1, 64, 512],
            seq_len=[128, 4096],
            tp=[1, 2, 4],
        ),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("along", "keys"), CASES, ids=[f"{along}-{i}" for i, (along, _) in enumerate(CASES)])
def test_evaluate_agrees_at_the_crossover_and_below_it(along, keys):
    df = rooflax.crossover(along=along, **keys)
    assert df.height > 0 and not df.columns.count(along)
    layouts = any(keys.get(name, [1]) != [1] for name in ("tp", "pp", "ep"))
    assert ({"tp", "pp", "ep", "network"} <= set(df.columns)) == layouts
    fixed = dict(
        dtype=None,
        kv_dtype=keys.get("kv_dtype"),
        causal=keys.get("causal", False),
        fused_attention=keys.get("fused_attention", False),
    )
    crossed = network = 0
    for row in df.iter_rows(named=True):
        model = rooflax.get_model(row["model"])
        point = {a: row[a] for a in ("batch", "seq_len", "hidden") if a != along}
        layout = {name: row.get(name, 1) for name in ("tp", "pp", "ep")}
        dtype = row["dtype"].partition("/")[0]

        def bound(value, row=row, point=point, dtype=dtype, layout=layout):
            result = rooflax.evaluate(
                model=row["model"],
                hardware=row["hardware"],
                phase=row["phase"],
                spec_k=row["spec_k"],
                **{**fixed, "dtype": dtype},
                **point,
                **layout,
                **{along: value},
            )
            return result["ops"][row["op"]]

        value = row["crossover"]
        if row["group"] == "comm":  # a collective: no FLOPs, network-bound wherever it is evaluated
            network += 1
            assert row["network"] and value is None and row["intensity_at"] is None, row
            probes = (model.hidden,) if along == "hidden" else (row["spec_k"] or 1, 2**20)
            assert {bound(v)["bound"] for v in probes} == {"network"}, row
            continue
        assert not row.get("network", False), row
        if value is None:
            lattice = model.head_dim * model.group_size * layout["tp"]
            top = LIMIT // lattice * lattice if along == "hidden" else LIMIT
            assert bound(top)["bound"] == "memory", row
            assert row["intensity_at"] is None and row["intensity_below"] is None
            continue
        crossed += 1
        at = bound(value)
        assert at["bound"] == "compute", row
        assert row["intensity_at"] == at["intensity"], row
        below = _legal_below(value, along, model, row["spec_k"], row["phase"], layout["tp"])
        if below is None:
            assert row["intensity_below"] is None, row
        else:
            assert bound(below)["bound"] == "memory", row
            assert row["intensity_below"] == bound(below)["intensity"], row
    assert crossed > 0
    assert (network > 0) == layouts  # every layout here has a degree above 1, hence collectives


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bound_stays_compute_above_the_crossover(data):
    """Monotone along batch and seq_len (dense or experts, any ep): memory-bound below the crossover,
    compute-bound at and above it."""
    head_dim = data.draw(st.sampled_from([32, 64, 128]))
    kv_heads = data.draw(st.integers(1, 8))
    heads = kv_heads * data.draw(st.integers(1, 8))
    experts = data.draw(st.sampled_from([0, 0, 4, 8, 60]))
    moe = (
        dict(
            experts=experts,
            experts_per_token=data.draw(st.integers(1, experts)),
            shared_experts=data.draw(st.integers(0, 2)),
            moe_intermediate=data.draw(st.integers(1, 20_000)),
        )
        if experts
        else {}
    )
    model = rooflax.Model(
        name="rand",
        hidden=heads * head_dim,
        layers=2,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=data.draw(st.integers(1, 40_000)),
        vocab=data.draw(st.integers(1, 200_000)),
        gated_mlp=bool(experts) or data.draw(st.booleans()),
        **moe,
    )
    ep = data.draw(st.sampled_from([d for d in (1, 2, 4) if experts % d == 0])) if experts else 1
    along = data.draw(st.sampled_from(["batch", "seq_len"]))
    phase = data.draw(st.sampled_from(["prefill", "decode", "verify"]))
    spec_k = data.draw(st.integers(1, 64)) if phase == "verify" else None
    other = data.draw(st.integers(spec_k or 1, 10_000)) if along == "batch" else data.draw(st.integers(1, 512))
    keys = dict(
        model=model,
        hardware=data.draw(st.sampled_from(["a40", "h100-sxm", "l4"])),
        dtype=data.draw(st.sampled_from(["fp16", "fp32", "int8", "w4a16"])),
        causal=data.draw(st.booleans()),
        fused_attention=data.draw(st.booleans()),
        ep=ep,
    )
    point = {"seq_len" if along == "batch" else "batch": other}
    df = rooflax.crossover(
        along=along,
        phases=[phase],
        spec_k=None if spec_k is None else [spec_k],
        **{name: [value] for name, value in point.items()},
        **{**keys, "ep": [ep]},
    )
    lowest = spec_k if along == "seq_len" and phase == "verify" else 1
    for row in df.filter(pl.col("group") != "comm").iter_rows(named=True):
        value = row["crossover"]
        probes = data.draw(st.lists(st.integers(lowest, 10**7), min_size=1, max_size=4))
        probes += [] if value is None else [v for v in (value - 1, value) if v >= lowest]
        for probe in probes:
            result = rooflax.evaluate(phase=phase, spec_k=spec_k, **point, **{along: probe}, **keys)["ops"][row["op"]]
            expected = "compute" if value is not None and probe >= value else "memory"
            assert result["bound"] == expected, (row, probe)


def _odd(intermediate: int) -> rooflax.Model:
    """A GQA model whose own width breaks the Llama scaling rule (its intermediate is not llama_intermediate)."""
    return rooflax.Model(
        name="odd", hidden=4096, layers=2, heads=32, kv_heads=8, head_dim=128, intermediate=intermediate, vocab=32000
    )


@pytest.mark.slow
def test_hidden_a_wide_own_mlp_is_compute_bound_below_memory_bound_widths():
    # decode up_proj in fp16: intensity = B·h·I / (h·I + B·h + B·I) = B / (1 + B/I + B/h). At batch 228
    # on the A40 (ridge 215.09): the model's own width 4096 with I = 2**20 gives 228 / 1.05588 = 215.9,
    # compute-bound; the scaled widths above it (step 128·4 = 512) give 4608, I 12288: 228 / 1.06803 = 213.5
    # and 5120, I 13824: 228 / 1.06102 = 214.9, memory-bound, then 5632, I 15104: 228 / 1.05558 = 216.0.
    batch = 228
    model = _odd(2**20)
    df = rooflax.crossover(model=model, along="hidden", phases=["decode"], batch=[batch], seq_len=[2048])
    row = df.filter(op="up_proj").row(0, named=True)
    assert row["crossover"] == 4096 and row["monotone"] is False

    def bound(h):
        return rooflax.evaluate(model=model, phase="decode", batch=batch, seq_len=2048, hidden=h)["ops"]["up_proj"][
            "bound"
        ]

    assert [bound(h) for h in (3584, 4096, 4608, 5120, 5632)] == ["memory", "compute", "memory", "memory", "compute"]
    assert "memory-bound again" in crossover_table(df)
    assert df.filter(op="qkv_proj").get_column("monotone").to_list() == [True]  # same shape as the scaled family


@pytest.mark.slow
def test_hidden_a_narrow_own_mlp_is_memory_bound_among_compute_bound_widths():
    model = _odd(256)
    df = rooflax.crossover(model=model, along="hidden", phases=["decode"], batch=[1024], seq_len=[2048])
    row = df.filter(op="up_proj").row(0, named=True)
    step = 128 * 4
    # batch 1024: the scaled family is compute-bound from some width below 4096 on, the own width is not
    assert row["monotone"] is False and row["crossover"] < 4096 and row["crossover"] % step == 0
    evaluate = rooflax.evaluate
    assert (
        evaluate(model=model, phase="decode", batch=1024, seq_len=2048, hidden=4096)["ops"]["up_proj"]["bound"]
        == "memory"
    )
    assert llama_intermediate(4096) != model.intermediate


@pytest.mark.slow
@pytest.mark.parametrize(
    "keys",
    [
        dict(model="llama-2-70b", phases=["prefill", "decode"], seq_len=[1, 512]),
        dict(model="mixtral-8x7b", phases=["decode"], seq_len=[512], tp=[2], ep=[1, 4]),
    ],
)
def test_a_wrong_device_answer_is_repaired_exactly(monkeypatch, keys):
    expected = rooflax.crossover(**keys)
    original = crossover_module._device_bisect

    def off_by_some(cells, search, ops, along):
        n = original(cells, search, ops, along)
        return np.where(n > 7, n - 7, n + 3)

    monkeypatch.setattr(crossover_module, "_device_bisect", off_by_some)
    assert rooflax.crossover(**keys).equals(expected)


@pytest.mark.slow
def test_second_call_does_not_recompile_and_x64_stays_off():
    _decode()
    ops = tuple(
        crossover_module._KindOp(kind=0, layer=None if op in ONCE else rooflax.LayerKind(), op=op) for op in layer_ops()
    )
    solver = crossover_module._solver(ops, "batch")
    size = solver._cache_size()
    _decode(hardware="h100-sxm")
    assert solver._cache_size() == size
    assert not jax.config.jax_enable_x64


@pytest.mark.slow
def test_smallest_legal_value_has_no_value_below():
    df = _decode(phases=["prefill"])
    row = df.filter(op="up_proj").row(0, named=True)  # 2048 prompt tokens: compute-bound at batch 1
    assert row["crossover"] == 1 and row["intensity_below"] is None
    verify = rooflax.crossover(along="seq_len", phases=["verify"], spec_k=[16], batch=[64])
    assert _value(verify, op="up_proj") == 16  # verify needs seq_len ≥ spec_k: 16 is the smallest legal value


@pytest.mark.slow
def test_keys_replace_a_spec_files_keys():
    df = rooflax.crossover(
        ROOT / "sweeps" / "llama13b_a40_spec.toml", along="batch", seq_len=[2048], hardware="h100-sxm"
    )
    assert set(df.get_column("hardware").cast(pl.String)) == {"h100-sxm"}
    assert set(df.get_column("seq_len")) == {2048}
    assert df.get_column("spec_k").drop_nulls().unique().sort().to_list() == [16, 32, 48]


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: rooflax.crossover(along="bach"), ("along: unknown axis 'bach'", "did you mean 'batch'")),
        (lambda: rooflax.crossover(along=3), ("along: unknown axis 3", "allowed: batch, hidden, seq_len")),
        (lambda: rooflax.crossover(bach=[1]), ("unknown key 'bach'", "did you mean 'batch'")),
        (lambda: rooflax.crossover(model="llama13b"), ("model: unknown name 'llama13b'", "'llama-13b'")),
        (lambda: rooflax.crossover(seq_len=[0]), ("seq_len", "expected a positive integer, got 0")),
        (
            lambda: crossover_table(pl.DataFrame({"a": [1]})),
            ("crossover_table: expected a frame of rooflax.crossover",),
        ),
    ],
)
def test_bad_input_is_one_line(call, fragments):
    one_line_error(call, *fragments)


@pytest.mark.slow
def test_cli_prints_the_table_and_writes_files(tmp_path, capsys):
    assert main(["crossover", "--phases", "decode", "--seq-len", "2048", "--where", "op = 'up_proj'"]) == 0
    out = capsys.readouterr().out
    assert "model llama-13b, hardware a40, dtype fp16, phase decode, seq_len 2048, hidden 5120" in out
    assert [line.split()[:2] for line in out.splitlines()[-1:]] == [["up_proj", "229"]]
    for suffix in ("parquet", "csv"):
        path = tmp_path / f"c.{suffix}"
        assert (
            main(
                [
                    "crossover",
                    "--along",
                    "seq_len",
                    "--model",
                    "llama-13b,toy-llama",
                    "--hardware",
                    "a40,h100-sxm",
                    "--batch",
                    "1,64",
                    "--phases",
                    "prefill",
                    "-o",
                    str(path),
                    "--quiet",
                ]
            )
            == 0
        )
        assert capsys.readouterr().out == ""
        read = pl.read_parquet(path) if suffix == "parquet" else pl.read_csv(path)
        assert read.height == 2 * 2 * 2 * 15 and "crossover" in read.columns
    assert (
        main(
            [
                "crossover",
                "--along",
                "hidden",
                "--phases",
                "decode",
                "--batch",
                "256",
                "--seq-len",
                "128",
                "--where",
                "crossover IS NULL",
            ]
        )
        == 0
    )
    assert "never" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--along", "bach", "-o", "OUT/c.csv"], "error: along: unknown axis 'bach'; did you mean 'batch'?"),
        (["--seq-len", "1,x", "-o", "OUT/c.csv"], "error: --seq-len: expected comma-separated integers, got '1,x'"),
        (["--hardware", "a4", "-o", "OUT/c.csv"], "error: hardware: unknown name 'a4'"),
        (["--where", "nope = 1", "-o", "OUT/c.csv"], "error: --where: cannot apply 'nope = 1'"),
        (["-o", "OUT/c.json"], "error: --output: "),
        (
            ["--model", "mixtral-8x7b", "--along", "hidden", "-o", "OUT/c.csv"],
            "error: along: hidden is not defined for mixtral-8x7b",
        ),
        (
            ["--along", "batch", "--batch", "1,2", "-o", "OUT/c.csv"],
            "error: --batch: crossover --along batch searches every batch up to 2**40, so --batch 1,2 is not read",
        ),
        (["--batch", "8", "-o", "OUT/c.csv"], "error: --batch: crossover --along batch searches every batch"),
        (["--along", "seq_len", "--seq-len", "512", "-o", "OUT/c.csv"], "error: --seq-len: crossover --along seq_len"),
        (["--along", "hidden", "--hidden", "4096", "-o", "OUT/c.csv"], "error: --hidden: crossover --along hidden"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    assert main(["crossover", *(a.replace("OUT", str(tmp_path)) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_layout_adds_its_columns_and_keeps_the_one_device_rows():
    # tp = 1 is the one-device layer: its rows are the frame of the same spec without the tp axis
    keys = dict(model="llama-2-70b", hardware="h100-sxm", phases=["prefill", "decode"], seq_len=[128, 4096])
    alone = rooflax.crossover(**keys)
    split = rooflax.crossover(**keys, tp=[1, 8], pp=[1, 2])
    assert split.columns == [*alone.columns[:3], "tp", "pp", "ep", *alone.columns[3:], "network"]
    one = split.filter(tp=1, pp=1).drop("tp", "pp", "ep", "network")
    assert one.equals(alone)
    # collectives are there, named network-bound: 2 all-reduces a layer with tp, a send with pp
    comm = split.filter(group="comm")
    assert comm.get_column("network").all() and comm.get_column("crossover").null_count() == comm.height
    assert sorted(set(comm.get_column("op").cast(pl.String))) == ["attn_allreduce", "mlp_allreduce", "pp_send"]
    assert not split.filter(pl.col("group") != "comm").get_column("network").any()
    assert "network: a collective (group comm)" in crossover_table(split)


@pytest.mark.parametrize(
    ("keys", "fragments"),
    [
        (
            dict(model=["llama-13b", "mixtral-8x7b"]),
            ("along: hidden is not defined for mixtral-8x7b", "mixture of experts is not scaled"),
        ),
        (
            dict(
                model=rooflax.Model(
                    name="six", hidden=384, layers=3, heads=6, kv_heads=6, head_dim=64, intermediate=1536, vocab=1000
                ),
                tp=[1, 3],
            ),
            ("along: hidden with tp 3", "split evenly only for tp dividing 256"),
        ),
    ],
)
def test_hidden_is_refused_where_the_widths_are_not_scaled(keys, fragments):
    one_line_error(lambda: rooflax.crossover(along="hidden", phases=["decode"], **keys), *fragments)
    rooflax.crossover(along="batch", phases=["decode"], **keys)  # the other axes are answered


def test_tree_masked_verify_crosses_where_the_sweep_does():
    # Fused attention of a GQA model turns compute-bound along seq_len in verify, and the scores it
    # counts are those the tree mask keeps: Q·(T−Q) + Σ depth, not the dense Q·T.
    trees = {4: {"depths": [1, 2, 2, 3]}, 53: {"top_k": [4, 4, 2]}}  # 4 and 1 + 4 + 16 + 32 candidates
    keys = dict(model="llama-2-70b", hardware="h100-sxm", phases=["verify"], fused_attention=True)
    df = rooflax.crossover(along="seq_len", batch=[1, 4], tree=list(trees.values()), **keys)
    attention = df.filter(op="attention")
    assert attention.get_column("crossover").null_count() < attention.height
    for row in df.filter(pl.col("crossover").is_not_null()).iter_rows(named=True):
        value = row["crossover"]
        below = [value - 1] if value - 1 >= row["spec_k"] else []
        # the sweep (the engine's path) of this one tree at the crossover and below it
        swept = rooflax.sweep(batch=[row["batch"]], seq_len=[*below, value], tree=[trees[row["spec_k"]]], **keys)
        got = {r["seq_len"]: (r["bound"], r["intensity"]) for r in swept.filter(op=row["op"]).iter_rows(named=True)}
        assert got[value] == ("compute", row["intensity_at"]), row
        if below:
            assert got[value - 1] == ("memory", row["intensity_below"]), row
    dense = rooflax.crossover(along="seq_len", batch=[1, 4], spec_k=[4, 53], **keys)
    assert not dense.filter(op="attention").equals(attention)  # the mask moves the crossover


@pytest.mark.slow
def test_readme_shows_the_real_output(capsys):
    argv = [
        "crossover",
        "--model",
        "llama-13b",
        "--hardware",
        "a40",
        "--dtype",
        "fp16",
        "--phases",
        "decode",
        "--seq-len",
        "2048",
    ]
    assert main(argv) == 0
    readme = (ROOT / "README.md").read_text()
    assert f"$ rooflax {' '.join(argv)}\n{capsys.readouterr().out}```" in readme
