"""Plugin settings (QgsSettings under copgen_beta/) and the options page, in a real QgsApplication."""

import pytest

from qgis_support import qgis_application

pytest.importorskip("qgis.core")


@pytest.fixture
def settings(monkeypatch):
    """The settings module over an empty copgen_beta/ group; the user's values come back after."""
    qgis_application()
    from qgis.core import QgsSettings

    from plugin.qgisui import settings as module

    monkeypatch.delenv(module.MODEL_DIR_ENV, raising=False)
    store = QgsSettings()
    saved = {key: store.value(key) for key in store.allKeys() if key.startswith(module.PREFIX)}
    store.remove(module.PREFIX.rstrip("/"))
    yield module
    store.remove(module.PREFIX.rstrip("/"))
    for key, value in saved.items():
        store.setValue(key, value)


def stored(key):
    from qgis.core import QgsSettings

    return QgsSettings().value("copgen_beta/" + key)


def test_defaults(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert settings.device() == "auto"
    assert settings.default_steps() == 50
    assert settings.default_solver() == "dpm-solver-fast"
    assert settings.max_area_km2() == 120.0  # one Major TOM cell (114 km²) fits
    assert settings.precision() == "faithful"
    assert settings.model_root() == tmp_path / "copgen-beta" / "models"


def test_values_are_stored_and_read_back(settings, tmp_path):
    settings.set_model_root(tmp_path)
    settings.set_device("cuda")
    settings.set_default_steps(20)
    settings.set_default_solver("ddim")
    settings.set_max_area_km2(12.5)
    settings.set_precision("fast")
    assert stored("device") == "cuda" and stored("model_dir") == str(tmp_path)
    assert stored("precision") == "fast" and settings.precision() == "fast"
    assert settings.model_root() == tmp_path
    assert settings.device() == "cuda"
    assert settings.default_steps() == 20
    assert settings.default_solver() == "ddim"
    assert settings.max_area_km2() == 12.5
    settings.set_max_area_km2(0)
    assert settings.max_area_km2() is None  # 0 = no limit
    settings.set_model_root("")
    assert settings.model_root() != tmp_path


def test_environment_overrides_model_folder(settings, monkeypatch, tmp_path):
    settings.set_model_root(tmp_path / "configured")
    monkeypatch.setenv(settings.MODEL_DIR_ENV, str(tmp_path / "forced"))
    assert settings.model_root() == tmp_path / "forced"
    monkeypatch.delenv(settings.MODEL_DIR_ENV)
    assert settings.model_root() == tmp_path / "configured"


def test_model_dir_is_the_root_when_it_holds_a_converted_model(settings, tmp_path):
    settings.set_model_root(tmp_path)
    assert settings.model_dir() == tmp_path / "cop-gen-beta"
    assert settings.model_dir(precision="fp16") == tmp_path / "cop-gen-beta-fp16"
    (tmp_path / "model.json").write_text("{}")
    assert settings.model_dir() == tmp_path


def install_fake(folder):
    folder.mkdir(parents=True)
    (folder / "model.json").write_text("{}")


def test_model_dir_prefers_the_devices_precision_and_falls_back_to_the_installed_one(settings, tmp_path):
    settings.set_model_root(tmp_path)
    fp32, fp16 = tmp_path / "cop-gen-beta", tmp_path / "cop-gen-beta-fp16"
    settings.set_device("cuda")
    assert settings.model_dir() == fp16  # nothing installed: where "Install model" (auto) puts it
    install_fake(fp32)
    assert settings.model_dir() == fp32  # the preferred fp16 is missing: the installed one
    install_fake(fp16)
    assert settings.model_dir() == fp16
    settings.set_device("cpu")
    assert settings.model_dir() == fp32
    (fp32 / "model.json").unlink()
    assert settings.model_dir() == fp16


@pytest.mark.parametrize(
    "setter, value, named",
    [
        ("set_device", "tpu", "device"),
        ("set_default_steps", 0, "steps"),
        ("set_default_steps", 5000, "steps"),
        ("set_default_solver", "euler", "solver"),
        ("set_max_area_km2", -1, "area"),
        ("set_precision", "int8", "precision"),
        ("set_precision", "fp16", "precision"),
    ],
)
def test_invalid_values_are_refused_naming_the_setting(settings, setter, value, named):
    from plugin.engine.errors import InputError

    with pytest.raises(InputError, match=named):
        getattr(settings, setter)(value)


def test_model_folder_that_is_a_file_is_refused(settings, tmp_path):
    from plugin.engine.errors import InputError

    not_a_folder = tmp_path / "model.txt"
    not_a_folder.write_text("x")
    with pytest.raises(InputError, match="model.txt"):
        settings.set_model_root(not_a_folder)


def test_hand_edited_invalid_values_read_as_defaults(settings):
    from qgis.core import QgsSettings

    store = QgsSettings()
    store.setValue("copgen_beta/device", "tpu")
    store.setValue("copgen_beta/steps", "many")
    store.setValue("copgen_beta/solver", "euler")
    store.setValue("copgen_beta/max_area_km2", -3)
    store.setValue("copgen_beta/precision", "int4")
    assert settings.device() == "auto"
    assert settings.default_steps() == 50
    assert settings.default_solver() == "dpm-solver-fast"
    assert settings.max_area_km2() == 120.0  # one Major TOM cell (114 km²) fits
    assert settings.precision() == "faithful"


def test_options_page_shows_and_applies_settings(settings, tmp_path):
    from qgis.gui import QgsOptionsPageWidget

    from plugin.qgisui.settings_dialog import PAGE_NAME, OptionsFactory

    settings.set_device("cpu")
    settings.set_default_steps(30)
    page = OptionsFactory().createWidget(None)
    assert isinstance(page, QgsOptionsPageWidget) and page.objectName() == PAGE_NAME
    form = page.form
    assert form.device.currentText() == "cpu" and form.steps.value() == 30
    assert form.model_dir.isEnabled() and form.model_dir.filePath() == ""
    assert str(settings.model_root()) in form.model_note.text()  # the default an empty field means

    form.model_dir.setFilePath(str(tmp_path))
    form.device.setCurrentText("cuda")
    form.steps.setValue(12)
    form.solver.setCurrentText("dpm-solver++2m")
    form.max_area.setValue(0)
    form.precision.setCurrentText("fast")
    page.apply()
    assert settings.model_root() == tmp_path
    assert settings.precision() == "fast"
    assert (settings.device(), settings.default_steps(), settings.default_solver()) == ("cuda", 12, "dpm-solver++2m")
    assert settings.max_area_km2() is None


def test_options_page_cannot_change_a_folder_forced_by_the_environment(settings, monkeypatch, tmp_path):
    from plugin.qgisui.settings_dialog import SettingsWidget

    settings.set_model_root(tmp_path / "configured")
    monkeypatch.setenv(settings.MODEL_DIR_ENV, str(tmp_path / "forced"))
    form = SettingsWidget()
    assert not form.model_dir.isEnabled()
    assert form.model_dir.filePath() == str(tmp_path / "forced")
    assert settings.MODEL_DIR_ENV in form.model_note.text()
    form.apply()
    assert stored("model_dir") == str(tmp_path / "configured")


def test_fast_preset_button_fills_the_form_and_apply_stores_it(settings, tiny_model_dir, monkeypatch):
    from plugin.qgisui.settings_dialog import SettingsWidget

    monkeypatch.setenv(settings.MODEL_DIR_ENV, str(tiny_model_dir))

    settings.set_default_solver("ddim")
    settings.set_default_steps(50)
    form = SettingsWidget()
    assert form.precision.currentText() == "faithful"
    form.fast_preset.click()
    assert (form.precision.currentText(), form.solver.currentText(), form.steps.value()) == (
        "fast",
        "dpm-solver-fast",
        20,
    )
    assert settings.precision() == "faithful"  # nothing is stored before apply
    assert "precision fast" in form.usage_note.text()  # the summary follows the form at once
    form.apply()
    stored_preset = (settings.precision(), settings.default_solver(), settings.default_steps())
    assert stored_preset == ("fast", "dpm-solver-fast", 20)


def test_precision_stored_by_earlier_versions_reads_in_todays_words(settings):
    from qgis.core import QgsSettings

    QgsSettings().setValue("copgen_beta/precision", "fast-int8")
    assert settings.precision() == "fast"
    QgsSettings().setValue("copgen_beta/precision", "turbo")  # hand-edited nonsense: the default
    assert settings.precision() == "faithful"


def test_options_page_says_which_model_and_precision_run(settings, tiny_model_dir, tmp_path, monkeypatch):
    from plugin.qgisui.settings_dialog import SettingsWidget

    monkeypatch.setenv(settings.MODEL_DIR_ENV, str(tiny_model_dir))
    settings.set_precision("fast")
    form = SettingsWidget()
    text = form.usage_note.text()
    assert str(tiny_model_dir) in text and "fp32" in text and "fast" in text
    monkeypatch.setenv(settings.MODEL_DIR_ENV, str(tmp_path / "empty"))
    form.load()
    text = form.usage_note.text()
    assert "No model is installed" in text and "Install model" in text


def test_has_int8_needs_the_model_json_entry_and_the_file(tmp_path):
    import json

    from plugin.engine.precision import has_int8

    assert not has_int8(tmp_path)  # no model.json
    (tmp_path / "model.json").write_text(json.dumps({"precision": "fp32"}))
    (tmp_path / "denoiser.int8.onnx").write_bytes(b"graph")
    assert not has_int8(tmp_path)  # the file alone is not recorded
    (tmp_path / "model.json").write_text(json.dumps({"precision": "fp32", "int8": {"file": "denoiser.int8.onnx"}}))
    assert has_int8(tmp_path)
    (tmp_path / "denoiser.int8.onnx").unlink()
    assert not has_int8(tmp_path)


def test_options_page_names_only_the_providers_the_plugin_runs_on(settings):
    import onnxruntime

    from plugin.qgisui.settings_dialog import OptionsFactory

    page = OptionsFactory().createWidget(None)
    note = page.form.providers_note.text()
    assert note.startswith("ONNX Runtime can use: CPUExecutionProvider")
    for name in set(onnxruntime.get_available_providers()) - {"CPUExecutionProvider", "CUDAExecutionProvider"}:
        assert name not in note  # e.g. AzureExecutionProvider, listed by onnxruntime, never used here
