"""Sweep specs: the files in sweeps/, axis forms, and every kind of bad input."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from one_line import one_line_error

import rooflax
from rooflax.cli.commands import main
from rooflax.config.hardware import hardware_to_toml
from rooflax.config.spec import DEFAULT_SPEC_TOML

ROOT = Path(__file__).parent.parent
SWEEPS = sorted((ROOT / "sweeps").glob("*.toml"))


def test_sweeps_folder_has_the_promised_specs():
    names = {p.name for p in SWEEPS}
    assert {
        "llama13b_a40.toml",
        "llama13b_a40_spec.toml",
        "hidden_scaling.toml",
        "hardware_comparison.toml",
        "benchmark_large.toml",
    } <= names


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_spec_parses(path):
    spec = rooflax.load_spec(path)
    assert spec.rows() > 0 and spec.description


def test_default_spec_is_the_reference_file():
    assert rooflax.default_spec() == rooflax.load_spec(Path(__file__).parent.parent / "sweeps" / "llama13b_a40.toml")
    assert tomllib.loads(DEFAULT_SPEC_TOML)["model"] == "llama-13b"
    # the Medusa paper's grid: batch 1..64 and seq_len 128..8192, powers of two, 49 settings per phase
    spec = rooflax.default_spec()
    assert spec.batch == (1, 2, 4, 8, 16, 32, 64) and spec.seq_len == (128, 256, 512, 1024, 2048, 4096, 8192)
    medusa = rooflax.load_spec(Path(__file__).parent.parent / "sweeps" / "medusa_llama13b_a40.toml")
    assert (medusa.batch, medusa.seq_len, medusa.phases) == (spec.batch, spec.seq_len, spec.phases)


def test_companion_sweeps_draw_the_papers_ceilings():
    ceilings = {"a40": (696e9, 149.7e12), "a6000": (768e9, 181e12), "a100": (1935e9, 312e12)}
    for model in ("7b", "13b", "33b"):
        for hw, (bandwidth, peak) in ceilings.items():
            spec = rooflax.load_spec(ROOT / "sweeps" / f"medusa_llama{model}_{hw}.toml")
            assert [m.name for m in spec.models] == [f"llama-{model}"] and [d.name for d in spec.dtypes] == ["fp16"]
            (hardware,) = spec.hardware
            assert (hardware.bandwidth_bytes_per_s, hardware.peak("fp16")) == (bandwidth, peak)
            assert len(spec.batch) * len(spec.seq_len) == 49


def test_axis_forms():
    spec = rooflax.parse_spec(
        batch={"start": 1, "stop": 128, "powers_of": 2}, seq_len={"start": 128, "stop": 4096, "step": 128}, hidden=5120
    )
    assert spec.batch == (1, 2, 4, 8, 16, 32, 64, 128)
    assert spec.seq_len[:3] == (128, 256, 384) and spec.seq_len[-1] == 4096 and len(spec.seq_len) == 32
    assert spec.hidden == (5120,)
    assert rooflax.parse_spec(batch=[8, 1], seq_len=[2]).batch == (1, 8)


def test_keywords_equal_toml(tmp_path):
    (tmp_path / "s.toml").write_text(
        "model = 'llama-3-8b'\nphases = ['decode']\n[axes]\nbatch = [1, 4]\nseq_len = [128]\n"
    )
    assert rooflax.load_spec(tmp_path / "s.toml") == rooflax.parse_spec(
        model="llama-3-8b", phases=["decode"], batch=[1, 4], seq_len=[128]
    )


def test_spec_paths_are_relative_to_the_spec(tmp_path):
    (tmp_path / "gpu.toml").write_text(
        "name = 'gpu'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 8e9\n[peak_flops]\nfp16 = 1e14\n"
    )
    (tmp_path / "s.toml").write_text("hardware = 'gpu.toml'\n[axes]\nbatch = [1]\nseq_len = [8]\n")
    assert rooflax.load_spec(tmp_path / "s.toml").hardware[0].name == "gpu"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"batch": [1], "seq_len": [8], "modle": "llama-13b"}, "spec: unknown key 'modle'; did you mean 'model'"),
        ({"batch": [], "seq_len": [8]}, "axes.batch: empty axis"),
        ({"batch": [1, 0], "seq_len": [8]}, r"axes.batch\[1\]: expected a positive integer, got 0"),
        ({"batch": [1, 1], "seq_len": [8]}, "axes.batch: value 1 is repeated"),
        ({"batch": "8", "seq_len": [8]}, "axes.batch: expected an integer, a list of integers or a table"),
        ({"batch": [1]}, "axes.seq_len: missing"),
        ({"batch": {"start": 8, "stop": 1, "step": 1}, "seq_len": [8]}, r"stop \(1\) is below start \(8\)"),
        ({"batch": {"start": 1, "stop": 8}, "seq_len": [8]}, "exactly one of step .linear. or powers_of"),
        (
            {"batch": {"start": 1, "stop": 8, "setp": 1}, "seq_len": [8]},
            "axes.batch: unknown key 'setp'; did you mean 'stop' or 'step'",
        ),
        ({"batch": [1], "seq_len": [8], "phases": ["verify"]}, "axes.spec_k: required"),
        ({"batch": [1], "seq_len": [8], "spec_k": [4]}, "only meaningful with the 'verify' phase"),
        ({"batch": [1], "seq_len": [8], "phases": ["verify"], "spec_k": [16]}, "16 exceeds every seq_len"),
        ({"batch": [1], "seq_len": [8], "phases": ["prefil"]}, "did you mean 'prefill'"),
        ({"batch": [1], "seq_len": [8], "hidden": [5000]}, "axes.hidden: 5000 is not a multiple"),
        (
            {"batch": [1], "seq_len": [8], "dtype": "fp8"},
            "dtype: fp8 needs FP8 tensor cores; a40 has fp32, tf32, fp16, bf16, int8",
        ),
        ({"batch": [1], "seq_len": [8], "causal": "yes"}, "causal: expected true or false"),
        ({"batch": [1], "seq_len": [8], "hardware": ["a40", "a40"]}, "hardware: a name is repeated"),
        ({"batch": [1], "seq_len": [8], "model": "nothere.json"}, "does not exist"),
    ],
)
def test_bad_specs(keys, message):
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.parse_spec(**keys)
    assert "\n" not in str(info.value)


def test_bad_spec_file_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[axes]\nbatch = [1]\nseq_len = [0]\n")
    with pytest.raises(rooflax.SpecError, match=r"bad.toml: axes.seq_len\[0\]: expected a positive integer"):
        rooflax.load_spec(path)
    path.write_text("model = \n")
    with pytest.raises(rooflax.SpecError, match="not valid TOML"):
        rooflax.load_spec(path)


def test_cli_refuses_a_chart_as_spec(tmp_path, capsys):
    chart = ROOT / "docs" / "llama13b_a40.png"
    assert main(["sweep", str(chart), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: spec: {str(chart)!r} is not UTF-8 text (byte 0x89 at offset 0); expected a TOML sweep spec\n"
    assert list(tmp_path.iterdir()) == []


# --- keywords override a spec's keys -------------------------------------------------------------------------------


def test_keywords_override_a_spec_file():
    path = ROOT / "sweeps" / "llama13b_a40.toml"
    table = tomllib.loads(path.read_text())
    table["axes"]["batch"] = [256]
    expected = rooflax.parse_spec(**table)
    assert rooflax.load_spec(path, batch=[256]) == expected
    df = rooflax.sweep(path, batch=[256], summary=True)
    assert df.get_column("batch").unique().to_list() == [256]
    assert sorted(df.get_column("seq_len").unique()) == [128 * 2**i for i in range(7)]  # kept from the file
    assert set(df.get_column("hidden")) == {5120} and set(df.get_column("phase")) == {"prefill", "decode"}


def test_keywords_override_and_remove_keys(tmp_path):
    (tmp_path / "s.toml").write_text(
        "model = 'llama-7b'\nphases = ['decode', 'verify']\ncausal = true\n"
        "[axes]\nbatch = [1, 2]\nseq_len = [64, 128]\nspec_k = [16]\n"
    )
    spec = rooflax.load_spec(tmp_path / "s.toml", phases=["decode"], spec_k=None, axes={"seq_len": [32]})
    assert spec == rooflax.parse_spec(model="llama-7b", phases=["decode"], causal=True, batch=[1, 2], seq_len=[32])
    one_line_error(
        lambda: rooflax.load_spec(tmp_path / "s.toml", phases=["decode"]),
        "s.toml (keywords phases): axes.spec_k: only meaningful with the 'verify' phase",
    )


def test_keywords_override_a_sweep_spec():
    spec = rooflax.parse_spec(
        model="llama-7b", phases=["decode", "verify"], batch=[1, 2], seq_len=[64], spec_k=[16], kv_dtype="fp8"
    )
    changed = spec.with_keys(batch=[8], model="llama-2-7b")
    assert changed == rooflax.parse_spec(
        model="llama-2-7b", phases=["decode", "verify"], batch=[8], seq_len=[64], spec_k=[16], kv_dtype="fp8"
    )
    assert spec.with_keys(kv_dtype="int4").dtypes == (rooflax.get_dtype("fp16", "int4"),)
    assert rooflax.sweep(spec, batch=[8]).equals(rooflax.sweep(changed.with_keys(model="llama-7b")))


def test_relative_paths_resolve_where_they_were_written(tmp_path, monkeypatch):
    gpu = "name = '{}'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 8e9\n[peak_flops]\nfp16 = 1e14\n"
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "gpu.toml").write_text(gpu.format("spec-gpu"))
    (tmp_path / "gpu.toml").write_text(gpu.format("cwd-gpu"))
    (tmp_path / "specs" / "s.toml").write_text("hardware = 'gpu.toml'\n[axes]\nbatch = [1]\nseq_len = [8]\n")
    monkeypatch.chdir(tmp_path)
    assert rooflax.load_spec("specs/s.toml", batch=[4]).hardware[0].name == "spec-gpu"
    assert rooflax.load_spec("specs/s.toml", hardware="gpu.toml").hardware[0].name == "cwd-gpu"


# --- a SweepSpec built directly is validated like parse_spec --------------------------------------------------------

GOOD = {
    "models": (rooflax.get_model("llama-13b"),),
    "hardware": (rooflax.get_hardware("a40"),),
    "dtypes": (rooflax.get_dtype("fp16"),),
    "phases": ("decode",),
    "batch": (1, 8),
    "seq_len": (64, 128),
}


def test_direct_sweep_spec_equals_parsed():
    direct = rooflax.SweepSpec(**{**GOOD, "batch": [np.int64(1), 8], "seq_len": range(64, 129, 64)})
    assert direct == rooflax.parse_spec(phases="decode", batch=[8, 1], seq_len=[128, 64])
    assert direct.batch == (1, 8) and all(type(b) is int for b in direct.batch) and hash(direct)


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        ({"phases": ("verify",)}, ["spec_k: required when phases include 'verify'"]),
        ({"batch": (8, 1)}, ["batch: values must be increasing and distinct, got 8 before 1"]),
        ({"batch": (1, 1)}, ["batch: values must be increasing and distinct, got 1 before 1"]),
        ({"batch": (1, 0)}, ["batch[1]: expected a positive integer, got 0"]),
        ({"batch": ()}, ["batch: expected a non-empty tuple of positive integers, got ()"]),
        ({"seq_len": 128}, ["seq_len: expected a non-empty tuple of positive integers, got 128"]),
        ({"seq_len": (2**62,)}, ["seq_len[0]: ", str(2**62), "2**53"]),
        ({"hidden": (1.5,)}, ["hidden[0]: expected a positive integer, got 1.5"]),
        ({"spec_k": (4,)}, ["spec_k: only meaningful with the 'verify' phase"]),
        ({"phases": ("verify",), "spec_k": (16, 256)}, ["spec_k: 256 exceeds every seq_len (largest 128)"]),
        (
            {"phases": ("decode", "prefill")},
            ["phases: expected the order prefill, decode, verify", "'decode', 'prefill'"],
        ),
        ({"phases": ("decode", "decode")}, ["phases: a phase is repeated", "'decode', 'decode'"]),
        ({"phases": ("decod",)}, ["phases: unknown name 'decod'; did you mean 'decode'"]),
        ({"phases": "decode"}, ["phases: expected a non-empty list", "'decode'"]),
        ({"models": ("llama-13b",)}, ["models[0]: expected a rooflax.Model", "'llama-13b'"]),
        ({"hardware": ()}, ["hardware: expected a non-empty tuple of rooflax.Hardware, got ()"]),
        (
            {"dtypes": (rooflax.get_dtype("fp8"),)},
            ["dtype: fp8 needs FP8 tensor cores; a40 has fp32, tf32, fp16, bf16, int8"],
        ),
        ({"hidden": (5000,)}, ["hidden: 5000 is not a multiple of llama-13b's head_dim 128"]),
        ({"causal": "yes"}, ["causal: expected true or false, got 'yes'"]),
        ({"fused_attention": 1}, ["fused_attention: expected true or false, got 1"]),
        ({"description": 5}, ["description: expected a string, got 5"]),
    ],
)
def test_bad_direct_sweep_specs(fields, fragments):
    one_line_error(lambda: rooflax.SweepSpec(**{**GOOD, **fields}), *fragments)


@pytest.mark.parametrize(
    ("keys", "fragments"),
    [
        ({"batch": [1e30]}, ["axes.batch[0]: 1e+30 is too large", "2**53"]),
        ({"batch": [2**62]}, ["axes.batch[0]: ", str(2**62)]),
        ({"seq_len": {"start": 1, "stop": 2**60, "powers_of": 2}}, ["axes.seq_len.stop: ", str(2**60)]),
        ({"batch": np.array([[1, 2]])}, ["axes.batch: expected a 1-D array of integers, got an array of shape (1, 2)"]),
        ({"batch": True}, ["axes.batch: expected a positive integer, got True"]),
    ],
)
def test_bad_axis_values(keys, fragments):
    one_line_error(lambda: rooflax.parse_spec(**{"batch": [1], "seq_len": [8], **keys}), *fragments)


def test_numpy_axis_values():
    spec = rooflax.parse_spec(batch=np.array([8, 1]), seq_len=np.int64(64), hidden=[np.int32(5120)])
    assert spec == rooflax.parse_spec(batch=[1, 8], seq_len=64, hidden=5120)


@pytest.mark.parametrize(
    ("keys", "fragments"),
    [
        ({"max_memory_bytes": float("nan")}, ["max_memory_bytes: expected a positive finite number, got nan"]),
        ({"max_memory_bytes": "8GB"}, ["max_memory_bytes: ", "'8GB'"]),
        ({"summary": "yes"}, ["summary: expected true or false, got 'yes'"]),
        ({"progress": 1}, ["progress: expected true or false, got 1"]),
    ],
)
def test_bad_sweep_keywords(keys, fragments):
    one_line_error(lambda: rooflax.sweep(batch=[1], seq_len=[8], **keys), *fragments)


@pytest.mark.parametrize("key", ["summary", "resume", "overwrite", "statistics", "progress"])
def test_bad_sweep_to_parquet_booleans(tmp_path, key):
    one_line_error(
        lambda: rooflax.sweep_to_parquet(None, tmp_path / "out", batch=[1], seq_len=[8], **{key: "no"}),
        f"{key}: expected true or false, got 'no'",
    )
    assert list(tmp_path.iterdir()) == []


def test_numpy_booleans_are_booleans():
    assert rooflax.sweep(batch=[1], seq_len=[8], summary=np.bool_(True)).height == 2  # prefill and decode


# --- no two things under one name ----------------------------------------------------------------------------------

GPU = (
    "name = '{name}'\nbandwidth_bytes_per_s = {bw}\nmemory_bytes = 48e9\ninterconnect_bytes_per_s = 56.25e9\n"
    "[peak_flops]\nfp16 = 1.497e14\n"
)


def test_a_file_may_not_take_a_presets_name(tmp_path):
    (tmp_path / "mine.toml").write_text(GPU.format(name="a40", bw=1e12))
    path = str(tmp_path / "mine.toml")
    one_line_error(
        lambda: rooflax.parse_spec(hardware=path, batch=[1], seq_len=[8]),
        f"hardware: {path!r} is named 'a40' like the preset but differs from it in "
        "bandwidth_bytes_per_s, sm_count, peak_flops, group_terms, board_power_w, phase_terms; give it another name, "
        "e.g. 'a40-custom'",
    )
    mine = rooflax.Hardware(name="a40", peak_flops={"fp16": 1e14}, bandwidth_bytes_per_s=1e12, memory_bytes=1e9)
    one_line_error(
        lambda: rooflax.sweep(hardware=["h100-sxm", mine], batch=[1], seq_len=[8]),
        "hardware: a Hardware built in Python is named 'a40' like the preset",
    )


def test_two_files_may_not_share_a_name(tmp_path):
    for file, bw in (("one.toml", 1e12), ("two.toml", 2e12)):
        (tmp_path / file).write_text(GPU.format(name="gpu", bw=bw))
    one, two = str(tmp_path / "one.toml"), str(tmp_path / "two.toml")
    one_line_error(
        lambda: rooflax.parse_spec(hardware=[one, two], batch=[1], seq_len=[8]),
        f"hardware: two different accelerators are named 'gpu' ({one!r} and {two!r} differ in "
        "bandwidth_bytes_per_s); give one of them another name",
    )
    (tmp_path / "two.toml").write_text(GPU.format(name="gpu", bw=1e12))
    one_line_error(
        lambda: rooflax.parse_spec(hardware=[one, two], batch=[1], seq_len=[8]),
        f"hardware: 'gpu' is given twice ({one!r} and {two!r} are the same); give it once",
    )


def test_a_model_folder_named_like_a_preset(tmp_path):
    preset = rooflax.get_model("llama-2-7b")
    (tmp_path / "llama-2-7b").mkdir()
    config = {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "intermediate_size": 11008,
        "vocab_size": 32000,
    }
    path = tmp_path / "llama-2-7b" / "config.json"
    path.write_text(json.dumps(config))
    same = rooflax.parse_spec(model=str(path), phases="decode", batch=[1], seq_len=[8])  # the same model: fine
    assert rooflax.sweep(same).get_column("model").unique().to_list() == ["llama-2-7b"]
    assert same.models[0].params == preset.params
    path.write_text(json.dumps({**config, "num_hidden_layers": 40}))
    one_line_error(
        lambda: rooflax.parse_spec(model=str(path), batch=[1], seq_len=[8]),
        f"model: {str(path)!r} is named 'llama-2-7b' like the preset but differs from it in layers",
    )


def test_an_identical_file_is_the_preset(tmp_path):
    (tmp_path / "a40.toml").write_text(hardware_to_toml(rooflax.get_hardware("a40")).replace('"A40"', '"my A40"'))
    spec = rooflax.parse_spec(hardware=str(tmp_path / "a40.toml"), phases="decode", batch=[1], seq_len=[8])
    assert rooflax.sweep(spec).equals(rooflax.sweep(phases="decode", batch=[1], seq_len=[8]))
