"""Sweep specs: the files in sweeps/, axis forms, and every kind of bad input."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import rooflax
from rooflax.spec import DEFAULT_SPEC_TOML

SWEEPS = sorted((Path(__file__).parent.parent / "sweeps").glob("*.toml"))


def test_sweeps_folder_has_the_promised_specs():
    names = {p.name for p in SWEEPS}
    assert {"llama13b_a40.toml", "llama13b_a40_spec.toml", "hidden_scaling.toml", "hardware_comparison.toml",
            "benchmark_large.toml"} <= names


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_spec_parses(path):
    spec = rooflax.load_spec(path)
    assert spec.rows() > 0 and spec.description


def test_default_spec_is_the_reference_file():
    assert rooflax.default_spec() == rooflax.load_spec(Path(__file__).parent.parent / "sweeps" / "llama13b_a40.toml")
    assert tomllib.loads(DEFAULT_SPEC_TOML)["model"] == "llama-13b"


def test_axis_forms():
    spec = rooflax.parse_spec(batch={"start": 1, "stop": 128, "powers_of": 2},
                              seq_len={"start": 128, "stop": 4096, "step": 128}, hidden=5120)
    assert spec.batch == (1, 2, 4, 8, 16, 32, 64, 128)
    assert spec.seq_len[:3] == (128, 256, 384) and spec.seq_len[-1] == 4096 and len(spec.seq_len) == 32
    assert spec.hidden == (5120,)
    assert rooflax.parse_spec(batch=[8, 1], seq_len=[2]).batch == (1, 8)


def test_keywords_equal_toml(tmp_path):
    (tmp_path / "s.toml").write_text("model = 'llama-3-8b'\nphases = ['decode']\n[axes]\nbatch = [1, 4]\n"
                                     "seq_len = [128]\n")
    assert rooflax.load_spec(tmp_path / "s.toml") == rooflax.parse_spec(model="llama-3-8b", phases=["decode"],
                                                                       batch=[1, 4], seq_len=[128])


def test_spec_paths_are_relative_to_the_spec(tmp_path):
    (tmp_path / "gpu.toml").write_text("name = 'gpu'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 8e9\n"
                                       "[peak_flops]\nfp16 = 1e14\n")
    (tmp_path / "s.toml").write_text("hardware = 'gpu.toml'\n[axes]\nbatch = [1]\nseq_len = [8]\n")
    assert rooflax.load_spec(tmp_path / "s.toml").hardware[0].name == "gpu"


@pytest.mark.parametrize(("keys", "message"), [
    ({"batch": [1], "seq_len": [8], "modle": "llama-13b"}, "spec: unknown key 'modle'; did you mean 'model'"),
    ({"batch": [], "seq_len": [8]}, "axes.batch: empty axis"),
    ({"batch": [1, 0], "seq_len": [8]}, r"axes.batch\[1\]: expected a positive integer, got 0"),
    ({"batch": [1, 1], "seq_len": [8]}, "axes.batch: value 1 is repeated"),
    ({"batch": "8", "seq_len": [8]}, "axes.batch: expected an integer, a list of integers or a table"),
    ({"batch": [1]}, "axes.seq_len: missing"),
    ({"batch": {"start": 8, "stop": 1, "step": 1}, "seq_len": [8]}, r"stop \(1\) is below start \(8\)"),
    ({"batch": {"start": 1, "stop": 8}, "seq_len": [8]}, "exactly one of step .linear. or powers_of"),
    ({"batch": {"start": 1, "stop": 8, "setp": 1}, "seq_len": [8]},
     "axes.batch: unknown key 'setp'; did you mean 'stop' or 'step'"),
    ({"batch": [1], "seq_len": [8], "phases": ["verify"]}, "axes.spec_k: required"),
    ({"batch": [1], "seq_len": [8], "spec_k": [4]}, "only meaningful with the 'verify' phase"),
    ({"batch": [1], "seq_len": [8], "phases": ["verify"], "spec_k": [16]}, "16 exceeds every seq_len"),
    ({"batch": [1], "seq_len": [8], "phases": ["prefil"]}, "did you mean 'prefill'"),
    ({"batch": [1], "seq_len": [8], "hidden": [5000]}, "axes.hidden: 5000 is not a multiple"),
    ({"batch": [1], "seq_len": [8], "dtype": "fp8"}, "hardware 'a40' has no fp8 peak"),
    ({"batch": [1], "seq_len": [8], "causal": "yes"}, "causal: expected true or false"),
    ({"batch": [1], "seq_len": [8], "hardware": ["a40", "a40"]}, "hardware: a name is repeated"),
    ({"batch": [1], "seq_len": [8], "model": "nothere.json"}, "does not exist"),
])
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
