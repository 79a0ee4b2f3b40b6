"""Hardware, model and dtype presets, and the files users add."""

from __future__ import annotations

import json

import pytest

import rooflax
from rooflax.hardware import hardware_to_toml
from rooflax.models import llama_intermediate


def test_a40_datasheet_figures():
    a40 = rooflax.get_hardware("a40")
    assert a40.peak("fp16") == 149.7e12 and a40.peak("bf16") == 149.7e12
    assert a40.bandwidth_bytes_per_s == 696e9 and a40.memory_bytes == 48e9
    assert a40.ridge("fp16") == pytest.approx(149.7e12 / 696e9)


@pytest.mark.parametrize("name", ["a40", "a6000", "a100-40gb-pcie", "a100-40gb-sxm", "a100-80gb-pcie",
                                  "a100-80gb-sxm", "h100-pcie", "h100-sxm", "h200", "l40s", "l4", "rtx4090", "mi300x"])
def test_every_preset_is_complete(name):
    hw = rooflax.get_hardware(name)
    assert {"fp32", "tf32", "fp16", "bf16", "int8"} <= set(hw.dtypes) and hw.source
    assert hw.peak("fp16") > hw.peak("fp32")


def test_h200_has_h100_compute_and_more_bandwidth():
    h100, h200 = rooflax.get_hardware("h100-sxm"), rooflax.get_hardware("h200")
    assert h100.peak_flops == h200.peak_flops
    assert h200.bandwidth_bytes_per_s > h100.bandwidth_bytes_per_s and h200.memory_bytes > h100.memory_bytes


def test_llama13b_parameter_count():
    assert rooflax.get_model("llama-13b").params == pytest.approx(13.0e9, rel=0.01)
    assert rooflax.get_model("llama-2-70b").params == pytest.approx(69.0e9, rel=0.01)
    assert rooflax.get_model("llama-3-8b").params == pytest.approx(8.03e9, rel=0.01)


def test_llama_intermediate_rule():
    assert [llama_intermediate(h) for h in (4096, 5120, 6656, 8192)] == [11008, 13824, 17920, 22016]
    assert [rooflax.get_model(n).intermediate for n in ("llama-7b", "llama-13b", "llama-33b", "llama-65b")] == [
        11008, 13824, 17920, 22016]


def test_at_hidden_keeps_gqa_ratio():
    m = rooflax.get_model("llama-2-70b").at_hidden(4096)
    assert (m.heads, m.kv_heads, m.head_dim, m.intermediate) == (32, 4, 128, 11008)
    assert rooflax.get_model("llama-2-70b").at_hidden(8192).intermediate == 28672  # its own width: preset shape


def test_dtype_policies():
    assert (rooflax.get_dtype("w4a16").weight_bytes, rooflax.get_dtype("w4a16").compute) == (0.5, "fp16")
    kv = rooflax.get_dtype("bf16", "fp8")
    assert (kv.name, kv.kv_bytes, kv.act_bytes) == ("bf16/kv=fp8", 1, 2)
    with pytest.raises(rooflax.SpecError, match="kv_dtype: unknown name 'fp4'"):
        rooflax.get_dtype("fp16", "fp4")


def test_hardware_toml_round_trip(tmp_path):
    path = tmp_path / "h100.toml"
    path.write_text(hardware_to_toml(rooflax.get_hardware("h100-sxm")))
    assert rooflax.load_hardware(path) == rooflax.get_hardware("h100-sxm")


def test_model_toml_and_config_json(tmp_path):
    (tmp_path / "m.toml").write_text('name = "m"\nhidden = 1024\nlayers = 4\nheads = 8\nkv_heads = 2\n'
                                     'intermediate = 2816\nvocab = 1000\n')
    m = rooflax.load_model(tmp_path / "m.toml")
    assert (m.head_dim, m.group_size) == (128, 4)
    folder = tmp_path / "Mistral-7B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "intermediate_size": 14336, "vocab_size": 32000, "tie_word_embeddings": False}))
    hf = rooflax.load_model(folder / "config.json")
    assert hf.name == "Mistral-7B"
    assert hf.params == rooflax.get_model("mistral-7b").params


@pytest.mark.parametrize(("text", "message"), [
    ("name = 'x'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 1e9\n", "missing required key 'peak_flops'"),
    ("name = 'x'\nbandwidth_bytes_per_s = -1\nmemory_bytes = 1e9\n[peak_flops]\nfp16 = 1e14\n",
     "bandwidth_bytes_per_s: expected a positive finite number, got -1"),
    ("name = 'x'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 1e9\n[peak_flops]\nfp61 = 1e14\n",
     "unknown name 'fp61'; did you mean 'fp16'"),
    ("name = 'x'\nbandwith_bytes_per_s = 1e12\n", "did you mean 'bandwidth_bytes_per_s'"),
    ("name = [", "not valid TOML"),
])
def test_bad_hardware_files(tmp_path, text, message):
    path = tmp_path / "hw.toml"
    path.write_text(text)
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.load_hardware(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("m.toml", "name = 'm'\nhidden = 1000\nlayers = 2\nheads = 3\nintermediate = 10\nvocab = 10\n",
     "hidden .1000. is not divisible by heads .3."),
    ("m.toml", "name = 'm'\nhidden = 1024\nlayers = 2\nheads = 8\nkv_heads = 3\nintermediate = 10\nvocab = 10\n",
     r"heads \(8\) must be a multiple of kv_heads \(3\)"),
    ("m.toml", "name = 'm'\nhidden = 1024\nlayers = 0\nheads = 8\nintermediate = 10\nvocab = 10\n",
     "layers: expected a positive integer, got 0"),
    ("m.toml", "name = 'm'\nhidden = 1024\n", "missing required key 'layers'"),
    ("config.json", '{"hidden_size": 64}', "missing required key 'num_hidden_layers'"),
    ("config.json", "{not json", "not valid JSON"),
])
def test_bad_model_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.load_model(path)
    assert "\n" not in str(info.value)


def test_unknown_preset_names_suggest():
    with pytest.raises(rooflax.SpecError, match="did you mean 'h100-sxm'"):
        rooflax.get_hardware("h100-smx")
    with pytest.raises(rooflax.SpecError, match="did you mean 'llama-2-70b'"):
        rooflax.get_model("llama2-70b")
