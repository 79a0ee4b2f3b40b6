"""Hardware, model and dtype presets, and the files users add."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from one_line import one_line_error

import rooflax
from rooflax.config.hardware import hardware_to_toml
from rooflax.config.models import llama_intermediate
from rooflax.errors import boolean, positive_int


def test_a40_datasheet_figures():
    a40 = rooflax.get_hardware("a40")
    assert a40.peak("fp16") == 149.7e12 and a40.peak("bf16") == 149.7e12
    assert a40.bandwidth_bytes_per_s == 696e9 and a40.memory_bytes == 48e9
    assert a40.ridge("fp16") == pytest.approx(149.7e12 / 696e9)


GPUS = ["a40", "a6000", "a100-40gb-pcie", "a100-40gb-sxm", "a100-80gb-pcie", "a100-80gb-sxm", "h100-pcie"]
GPUS += ["h100-sxm", "h200", "l40s", "l4", "rtx4090", "b200", "mi300x", "b300", "gb200", "h20", "h800", "mi325x"]
GPUS += ["mi355x"]


@pytest.mark.parametrize("name", GPUS)
def test_every_gpu_preset_is_complete(name):
    hw = rooflax.get_hardware(name)
    assert {"fp32", "fp16", "bf16"} <= set(hw.dtypes) and hw.source
    assert hw.peak("fp16") > hw.peak("fp32") and hw.board_power_w


@pytest.mark.parametrize("name", sorted(rooflax.HARDWARE))
def test_every_preset_cites_its_figures(name):
    hw = rooflax.get_hardware(name)
    assert re.search(r"datasheet|documentation|whitepaper|Hot Chips|specifications", hw.source)
    for dtype, peak in hw.peak_flops:  # each dense peak is written in its source, in TFLOPS
        assert re.search(rf"\b{peak / 1e12:g}\b", hw.source), (dtype, peak)
    power = f"board power {hw.board_power_w:g} W: " if hw.board_power_w else "board power not published: "
    assert power in hw.source
    assert f"interconnect {hw.interconnect_bytes_per_s / 1e9:g} GB/s one way" in hw.source
    assert "achieved terms" in hw.source  # fitted, an architecture's, or defaults: said which


def test_new_presets_ridge_points_by_hand():
    # ridge = dense peak / bandwidth, FLOP per byte
    assert rooflax.get_hardware("gb200").ridge("nvfp4") == 10_000e12 / 8_000e9 == 1250
    assert rooflax.get_hardware("mi355x").ridge("mxfp4") == pytest.approx(10_066.3e12 / 8_000e9)  # 1258.29
    assert rooflax.get_hardware("tpu-v6e").ridge("bf16") == pytest.approx(918e12 / 1638e9)  # 560.44
    assert rooflax.get_hardware("h20").ridge("fp8") == 296e12 / 4_000e9 == 74


def test_per_gpu_figures_of_rack_and_board_datasheets():
    # GB200 NVL72 (72 GPUs, sparsity figures): FP4 1440 PF, FP8 720 PF, 576 TB/s, NVLink 130 TB/s
    gb200 = rooflax.get_hardware("gb200")
    assert gb200.peak("nvfp4") == 1440e15 / 72 / 2 and gb200.peak("fp8") == 720e15 / 72 / 2
    assert gb200.bandwidth_bytes_per_s == 576e12 / 72 and gb200.interconnect_gpus == 72
    assert gb200.interconnect_bytes_per_s == pytest.approx(130e12 / 72 / 2, rel=0.02)  # 1.8 TB/s both ways
    # HGX B300 (8 GPUs): FP4 108 PF dense, FP8 72 PF with sparsity
    b300 = rooflax.get_hardware("b300")
    assert b300.peak("nvfp4") == 108e15 / 8 and b300.peak("fp8") == 72e15 / 8 / 2
    # TPUs: the MXU is the tile, TensorCores the SM count, ICI one way the link
    v5p, v6e = rooflax.get_hardware("tpu-v5p"), rooflax.get_hardware("tpu-v6e")
    assert (v5p.tile_m, v5p.tile_n, v5p.sm_count, v5p.interconnect_bytes_per_s) == (128, 128, 2, 1200e9 / 2)
    assert (v6e.tile_m, v6e.tile_n, v6e.sm_count, v6e.interconnect_bytes_per_s) == (256, 256, 1, 800e9 / 2)
    assert rooflax.get_hardware("tpu7x").memory_bytes == 192 * 2**30


@pytest.mark.parametrize(
    "name, family", [("b300", "b200"), ("gb200", "b200"), ("h20", "h100-sxm"), ("h800", "h100-sxm")]
)
def test_new_presets_take_their_familys_terms(name, family):
    hw, source = rooflax.get_hardware(name), rooflax.get_hardware(family)
    assert hw.group_terms == source.group_terms and f"those of {family} (same architecture)" in hw.source


@pytest.mark.parametrize("name", ["mi325x", "mi355x", "tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu7x", "gaudi3"])
def test_presets_without_measurements_say_so(name):
    hw = rooflax.get_hardware(name)
    assert hw.group_terms == () and "achieved terms: defaults (no measurements of this architecture)" in hw.source


@pytest.mark.parametrize(
    "kind, name",
    [
        ("NVIDIA GB200", "gb200"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA B300 SXM6 AC", "b300"),
        ("NVIDIA H20", "h20"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA H800", "h800"),
        ("AMD Instinct MI325X", "mi325x"),
        ("AMD Instinct MI355X", "mi355x"),
        ("TPU v5 lite", "tpu-v5e"),
        ("TPU v5", "tpu-v5p"),
        ("TPU v5p", "tpu-v5p"),
        ("TPU v6 lite", "tpu-v6e"),
        ("TPU7x", "tpu7x"),
        ("TPU v4", None),
    ],
)
def test_device_kinds_of_the_new_parts(kind, name):
    # JAX's device_kind: the CUDA/ROCm device name, or the TPU names jax/_src/tpu_info.py reads
    found = rooflax.config.hardware.preset_for_kind(kind)
    assert (found.name if found else None) == name


def test_board_power_and_domain_round_trip(tmp_path):
    for name in ("gb200", "tpu-v5e", "a40"):
        hw = rooflax.get_hardware(name)
        path = tmp_path / f"{name}.toml"
        path.write_text(hardware_to_toml(hw))
        back = rooflax.load_hardware(path)
        assert back == hw and back.board_power_w == hw.board_power_w and back.interconnect_gpus == hw.interconnect_gpus
        assert hw.to_dict().get("board_power_w") == hw.board_power_w
    assert rooflax.get_hardware("a40").board_power_w == 300 and rooflax.get_hardware("tpu-v5e").board_power_w is None


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("board_power_w", 0, "board_power_w: 0 is outside the range a real part has, 0.001 to 100000 W"),
        ("board_power_w", -5, "board_power_w: -5 is outside the range"),
        ("board_power_w", "big", "board_power_w: expected a number from 0.001 to 100000 W, got 'big'"),
        ("interconnect_gpus", 0, "interconnect_gpus: expected a positive integer"),
    ],
)
def test_bad_board_power_and_domain(key, value, message):
    base = dict(name="x", peak_flops={"fp16": 1e14}, bandwidth_bytes_per_s=1e12, memory_bytes=1e9)
    one_line_error(lambda: rooflax.Hardware(**base, **{key: value}), message)


def test_h200_has_h100_compute_and_more_bandwidth():
    h100, h200 = rooflax.get_hardware("h100-sxm"), rooflax.get_hardware("h200")
    assert h100.peak_flops == h200.peak_flops
    assert h200.bandwidth_bytes_per_s > h100.bandwidth_bytes_per_s and h200.memory_bytes > h100.memory_bytes


def test_b200_is_one_gpu_of_the_hgx_datasheet():
    # HGX B200 (8 GPUs, figures with sparsity): FP16/BF16 36 PFLOPS, FP8 72 PFLOPS, 64 TB/s, 1,440 GB
    b200 = rooflax.get_hardware("b200")
    assert b200.peak("bf16") == 36e15 / 8 / 2 and b200.peak("fp8") == 72e15 / 8 / 2
    assert b200.bandwidth_bytes_per_s == 64e12 / 8 and b200.memory_bytes == 1440e9 / 8


def test_llama13b_parameter_count():
    assert rooflax.get_model("llama-13b").params == pytest.approx(13.0e9, rel=0.01)
    assert rooflax.get_model("llama-2-70b").params == pytest.approx(69.0e9, rel=0.01)
    assert rooflax.get_model("llama-3-8b").params == pytest.approx(8.03e9, rel=0.01)


def test_llama_intermediate_rule():
    assert [llama_intermediate(h) for h in (4096, 5120, 6656, 8192)] == [11008, 13824, 17920, 22016]
    assert [rooflax.get_model(n).intermediate for n in ("llama-7b", "llama-13b", "llama-33b", "llama-65b")] == [
        11008,
        13824,
        17920,
        22016,
    ]


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
    (tmp_path / "m.toml").write_text(
        'name = "m"\nhidden = 1024\nlayers = 4\nheads = 8\nkv_heads = 2\nintermediate = 2816\nvocab = 1000\n'
    )
    m = rooflax.load_model(tmp_path / "m.toml")
    assert (m.head_dim, m.group_size) == (128, 4)
    folder = tmp_path / "Mistral-7B"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "hidden_size": 4096,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "intermediate_size": 14336,
                "vocab_size": 32000,
                "tie_word_embeddings": False,
            }
        )
    )
    hf = rooflax.load_model(folder / "config.json")
    assert hf.name == "Mistral-7B"
    assert hf.params == rooflax.get_model("mistral-7b").params


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 1e9\n", "missing required key 'peak_flops'"),
        (
            "name = 'x'\nbandwidth_bytes_per_s = -1\nmemory_bytes = 1e9\n[peak_flops]\nfp16 = 1e14\n",
            r"bandwidth_bytes_per_s: -1 is outside the range a real part has, 1e\+06 to 1e\+16 B/s",
        ),
        (
            "name = 'x'\nbandwidth_bytes_per_s = 1e12\nmemory_bytes = 1e9\n[peak_flops]\nfp61 = 1e14\n",
            "unknown name 'fp61'; did you mean 'fp16'",
        ),
        ("name = 'x'\nbandwith_bytes_per_s = 1e12\n", "did you mean 'bandwidth_bytes_per_s'"),
        ("name = [", "not valid TOML"),
    ],
)
def test_bad_hardware_files(tmp_path, text, message):
    path = tmp_path / "hw.toml"
    path.write_text(text)
    with pytest.raises(rooflax.SpecError, match=message) as info:
        rooflax.load_hardware(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "m.toml",
            "name = 'm'\nhidden = 1000\nlayers = 2\nheads = 3\nintermediate = 10\nvocab = 10\n",
            "hidden .1000. is not divisible by heads .3.",
        ),
        (
            "m.toml",
            "name = 'm'\nhidden = 1024\nlayers = 2\nheads = 8\nkv_heads = 3\nintermediate = 10\nvocab = 10\n",
            r"heads \(8\) must be a multiple of kv_heads \(3\)",
        ),
        (
            "m.toml",
            "name = 'm'\nhidden = 1024\nlayers = 0\nheads = 8\nintermediate = 10\nvocab = 10\n",
            "layers: expected a positive integer, got 0",
        ),
        ("m.toml", "name = 'm'\nhidden = 1024\n", "missing required key 'layers'"),
        ("config.json", '{"hidden_size": 64}', "missing required key 'num_hidden_layers'"),
        ("config.json", "{not json", "not valid JSON"),
    ],
)
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


# --- reading files: one reader, one-line errors naming the file and what it was read as ---------------------------

LOADERS = {  # loader, the field it reads for, what the file should be
    "spec": (rooflax.load_spec, "spec: ", "a TOML sweep spec"),
    "model": (rooflax.load_model, "model file: ", "a model TOML file or a Hugging Face config.json"),
    "hardware": (rooflax.load_hardware, "hardware file: ", "a hardware TOML file"),
}


def _missing(folder: Path) -> tuple[Path, str]:
    return folder / "absent.toml", "does not exist"


def _directory(folder: Path) -> tuple[Path, str]:
    (folder / "dir.toml").mkdir()
    return folder / "dir.toml", "is a directory"


def _loop(folder: Path) -> tuple[Path, str]:
    (folder / "loop.toml").symlink_to(folder / "loop.toml")
    return folder / "loop.toml", "is a symlink loop"


def _not_utf8(folder: Path) -> tuple[Path, str]:
    (folder / "chart.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return folder / "chart.toml", "is not UTF-8 text (byte 0x89 at offset 0)"


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("make", [_missing, _directory, _loop, _not_utf8])
def test_unreadable_files(tmp_path, loader, make):
    path, problem = make(tmp_path)
    load, field, expected = LOADERS[loader]
    one_line_error(lambda: load(path), f"{field}{str(path)!r} {problem}; expected {expected}")


@pytest.mark.parametrize("loader", LOADERS)
def test_unreadable_file_permission(tmp_path, monkeypatch, loader):
    path = tmp_path / "locked.toml"
    path.write_text("name = 'x'\n")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)  # the tests may run as root, who reads anything
    load, field, expected = LOADERS[loader]
    one_line_error(lambda: load(path), f"{field}{str(path)!r} cannot be read (permission denied); expected {expected}")


# --- booleans are booleans, counts are integers up to 2**53 ---------------------------------------------------------

CONFIG = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 32000,
}


def _config(folder: Path, **changes) -> Path:
    (folder / "m").mkdir(exist_ok=True)
    path = folder / "m" / "config.json"
    path.write_text(json.dumps({**CONFIG, **changes}))
    return path


def test_tie_word_embeddings_is_read_as_written(tmp_path):
    untied = rooflax.load_model(_config(tmp_path, tie_word_embeddings=False))
    tied = rooflax.load_model(_config(tmp_path, tie_word_embeddings=True))
    assert (untied.tied_embeddings, tied.tied_embeddings) == (False, True)
    assert untied.params - tied.params == 32000 * 4096  # one embedding table fewer
    assert rooflax.load_model(_config(tmp_path, tie_word_embeddings=None)).tied_embeddings is False


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tie_word_embeddings", "false"),
        ("tie_word_embeddings", "true"),
        ("tie_word_embeddings", 0),
        ("tie_word_embeddings", 1),
        ("hidden_size", 1e30),
        ("hidden_size", 2**53 + 1),
        ("num_hidden_layers", "32"),
        ("num_attention_heads", 32.5),
        ("vocab_size", True),
        ("num_key_value_heads", -8),
        ("head_dim", 0),
    ],
)
def test_bad_config_json_values(tmp_path, key, value):
    path = _config(tmp_path, **{key: value})
    one_line_error(lambda: rooflax.load_model(path), str(path), f"{key}: ", repr(value))


@pytest.mark.parametrize(
    ("key", "value"), [("gated_mlp", "yes"), ("tied_embeddings", 1), ("layers", 2**60), ("label", 5)]
)
def test_bad_model_fields(key, value):
    fields = {**rooflax.get_model("llama-7b").to_dict(), key: value}
    one_line_error(lambda: rooflax.Model(**fields), f"{key}: ", repr(value))


def test_numpy_numbers_are_numbers():
    fields = rooflax.get_model("llama-7b").to_dict()
    numpy_model = rooflax.Model(
        **{
            **fields,
            "layers": np.int64(32),
            "heads": np.int32(32),
            "hidden": np.uint16(4096),
            "vocab": np.float64(32000.0),
            "gated_mlp": np.bool_(True),
        }
    )
    assert numpy_model == rooflax.get_model("llama-7b")
    assert type(numpy_model.layers) is int and numpy_model.gated_mlp is True
    a40 = rooflax.get_hardware("a40")
    assert rooflax.Hardware(
        name="a40",
        label="A40",
        peak_flops={d: np.float32(v) for d, v in a40.peak_flops},
        bandwidth_bytes_per_s=np.float64(696e9),
        memory_bytes=np.int64(48 * 10**9),
    ).ridge("fp16") == pytest.approx(a40.ridge("fp16"), rel=1e-7)


def test_largest_count_is_two_to_the_53():
    assert float(2**53 - 1) + 1 == 2**53 and float(2**53 + 1) == 2**53  # the last integer float64 holds exactly
    assert positive_int("batch", 2**53) == 2**53
    one_line_error(lambda: positive_int("batch", 2**53 + 1), "batch: ", str(2**53 + 1), "2**53")


@pytest.mark.parametrize("value", [True, np.bool_(False), "8", 1.5, float("nan"), float("inf"), 1e300, -3])
def test_positive_int_refuses(value):
    one_line_error(lambda: positive_int("axes.batch", value), "axes.batch: ", repr(value))


@pytest.mark.parametrize("value", ["yes", "false", 1, 0, None, 1.0])
def test_boolean_refuses(value):
    one_line_error(lambda: boolean("summary", value), "summary: expected true or false", repr(value))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"weight_bytes": 0}, "weight_bytes: expected a positive finite number, got 0"),
        ({"kv_bytes": float("nan")}, "kv_bytes: expected a positive finite number, got nan"),
        ({"compute": "fp61"}, "compute: unknown name 'fp61'; did you mean 'fp16'"),
        ({"name": ""}, "dtype.name: expected a non-empty string, got ''"),
    ],
)
def test_bad_dtype_policies(fields, message):
    base = {"name": "mine", "weight_bytes": 2, "act_bytes": 2, "kv_bytes": 2, "compute": "fp16"}
    one_line_error(lambda: rooflax.DtypePolicy(**{**base, **fields}), message)


def test_kv_dtype_override_replaces_an_earlier_one():
    twice = rooflax.get_dtype(rooflax.get_dtype("fp16", "fp8"), "int4")
    assert (twice.name, twice.kv_bytes) == ("fp16/kv=int4", 0.5)
    assert twice == rooflax.get_dtype("fp16", "int4")


def test_toy_llama_parameter_count_by_hand():
    m = rooflax.get_model("toy-llama")
    assert (m.hidden, m.layers, m.heads, m.kv_heads, m.head_dim, m.intermediate, m.vocab) == (
        256,
        4,
        4,
        2,
        64,
        768,
        1024,
    )
    # per layer: q,k,v 256·(4+2·2)·64 = 131,072; o 256·256 = 65,536; gate, up, down 3·256·768 = 589,824;
    # two norms 2·256 = 512 → 786,944; four layers 3,147,776; embedding and LM head 2·1024·256 = 524,288;
    # final norm 256 → 3,672,320
    assert m.params == 3_672_320
    assert m.at_hidden(256) is m and llama_intermediate(256) == m.intermediate  # on the Llama scaling rule


def test_models_listing_shows_small_counts_in_millions(capsys):
    from rooflax.cli.commands import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"toy-llama\s+Toy Llama\s+256\s+4\s+4\s+2\s+64\s+768\s+1024\s+3\.67M", out)
    assert re.search(r"llama-13b\s.*13\.02B", out)
