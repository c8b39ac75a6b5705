"""What the training widget remembers between sessions, and how it treats a file another version wrote."""

import json
from dataclasses import replace

from hmgdm_core.model import ModelConfig
from hmgdm_core.train import PretrainConfig
from hmgdm_core.vae import VAEConfig
from napari_hmgdm._train_settings import read_settings, write_settings
from napari_hmgdm._widgets.train_widget import LATENT, TrainWidget

SAVED = {
    "mpp": 0.5,
    "kind": "nuclei",
    "patch_size": 128,
    "out_dir": "/data/runs",
    "features": LATENT,
    "start_from": "from scratch",
    "pretrain": PretrainConfig.preset("fast"),
    "vae": VAEConfig(steps=7),
}


def test_settings_round_trip(tmp_path):
    path = tmp_path / "deeper" / "settings.json"
    write_settings(path, SAVED)
    assert read_settings(path) == (SAVED, [])


def test_each_unusable_entry_is_dropped_on_its_own_with_a_reason(tmp_path):
    path = tmp_path / "settings.json"
    write_settings(path, SAVED)
    record = json.loads(path.read_text())
    pretrain = json.loads(record["pretrain"])
    pretrain["model"]["renamed_option"] = 1  # a field of another version
    record.update(pretrain=json.dumps(pretrain), vae={**record["vae"], "steps": "many"}, patch_size=12.5,
                  colour="blue")  # fmt: skip
    path.write_text(json.dumps(record))
    settings, dropped = read_settings(path)
    assert settings == {k: v for k, v in SAVED.items() if k not in ("pretrain", "vae", "patch_size")}
    assert len(dropped) == 3
    assert any(line.startswith("pretrain: ") and "renamed_option" in line for line in dropped)
    assert any(line.startswith("vae: ") and "steps" in line for line in dropped)
    assert any(line.startswith("patch_size: ") for line in dropped)


def test_missing_broken_or_odd_files_give_no_settings(tmp_path):
    path = tmp_path / "settings.json"
    assert read_settings(path) == ({}, [])
    path.write_text('{"mpp": 0.5')
    assert read_settings(path) == ({}, [f"{path} is not valid JSON"])
    path.write_text("[1, 2]")
    assert read_settings(path) == ({}, [f"{path} does not hold a JSON object"])
    path.write_text('{"mpp": NaN, "kind": "nuclei"}')  # Python's json writes and reads NaN
    settings, dropped = read_settings(path)
    assert settings == {"kind": "nuclei"} and dropped == ["mpp: expected a finite number, got nan"]


def test_the_widget_opens_on_a_stale_file_and_says_what_it_did_not_use(make_napari_viewer, tmp_path):
    path = tmp_path / "settings.json"
    fast = PretrainConfig.preset("fast")
    write_settings(path, {**SAVED, "pretrain": replace(fast, model=replace(fast.model, hidden_dim=48))})
    record = json.loads(path.read_text())
    record["pretrain"] = record["pretrain"].replace('"hidden_dim"', '"hidden_width"')  # renamed by another version
    record["kind"] = "glands"  # an entity kind this version does not offer
    path.write_text(json.dumps(record))

    widget = TrainWidget(make_napari_viewer(), settings_path=path)
    assert "pretrain" in widget.status.value and "hidden_width" in widget.status.value
    assert "'glands' is not offered" in widget.status.value
    assert widget.kind.value == "tissue" and widget.patch_size.value == 128 and widget.features.value == LATENT
    assert widget.model_settings.config == ModelConfig() and widget.vae_settings.config.steps == 7
    widget.save_settings()  # the next session reads a clean file
    assert read_settings(path)[1] == []


def test_precision_offers_only_what_trains_on_the_chosen_device(make_napari_viewer, tmp_path, monkeypatch):
    import hmgdm_core.train.device as device_module

    path = tmp_path / "settings.json"
    fast = PretrainConfig.preset("fast")
    # Saved on a GPU machine: a device and a precision this CPU machine lacks.
    gpu_run = replace(fast, train=replace(fast.train, device="cuda:3", precision="fp16"))
    write_settings(path, {**SAVED, "pretrain": gpu_run})
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    widget = TrainWidget(make_napari_viewer(), settings_path=path)
    form = widget.train_settings
    assert "'cuda:3' is not found" in widget.status.value and "'fp16' does not train on auto" in widget.status.value
    assert form.device.value == "auto" and form.precision.value == "fp32"
    assert list(form.precision.choices) == ["fp32", "bf16"]  # a CPU with bf16 in hardware
    form.precision.value = "bf16"

    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    form.device.value = "cpu"  # as a person picks it: the drop-down's changed signal
    assert list(form.precision.choices) == ["fp32"] and form.precision.value == "fp32"
    assert widget.status.value == "bf16 does not train on cpu: precision set to fp32."
    assert widget.pretrain_config().train.precision == "fp32"
