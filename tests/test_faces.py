"""The two faces over one engine: the registry drives their words, each names a bad field in its
own words, and the same request through the CLI and through QGIS (real QGIS, processing.run)
writes identical files."""

import numpy as np
import pytest
import rasterio

from plugin.cli import build_parser, main
from plugin.commands.flags import FLAGS, describe
from plugin.engine.errors import InputError
from plugin.engine.families.beta.registry import LABELS, MODALITIES, REGISTRY
from plugin.engine.request import FIELDS, GenerationRequest
from test_qgis_algorithms import provider  # noqa: F401 (the installed plugin's provider fixture)

TILE = "282D_485L_3_3.tif"
DATE_TAGS = ("run_date_utc",)


@pytest.fixture(scope="module")
def tile(shared_dir):
    return shared_dir / "data" / "majortom_s2l2a" / TILE


def generate_algorithm():
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().algorithmById("copgen:generate")


# -- the registry drives both faces -----------------------------------------------------------


def subcommand_help(name):
    parser = build_parser()
    action = next(a for a in parser._subparsers._group_actions if a.dest == "command")
    return action.choices[name]


def test_cli_choices_and_help_come_from_the_registry():
    help_text = " ".join(subcommand_help("generate").format_help().split())
    for record in REGISTRY:
        assert f"{record.key} ({record.label})" in help_text
    modality = next(a for a in subcommand_help("prepare")._actions if a.dest == "modality")
    assert tuple(modality.choices) == MODALITIES
    for record in REGISTRY:  # every condition field of every modality has a flag
        assert FLAGS[f"conditions.{record.key}"].startswith(f"--condition {record.key}=")


def test_every_request_field_has_a_cli_flag():
    assert set(FIELDS) <= set(FLAGS)


def test_qgis_labels_channels_and_styles_come_from_the_registry(provider):
    from copgen_beta.plugin.qgisui.condition_names import CHANNEL_BANDS, CHANNELS
    from copgen_beta.plugin.qgisui.output_layers import SHORT_NAMES

    algorithm = generate_algorithm()
    assert algorithm.parameterDefinition("GENERATE").options() == [record.label for record in REGISTRY]
    for record in REGISTRY:
        name = record.key.upper()
        assert algorithm.parameterDefinition(name).description() == f"{record.label} condition"
        for channel, label in zip(record.channels, record.channel_labels):
            assert CHANNEL_BANDS[channel] == label
            assert label in algorithm.parameterDefinition(f"{name}_{channel}").description()
        assert CHANNELS[record.key] == record.channels and SHORT_NAMES[record.key] == record.short_label


# -- each face names the field in its own words ------------------------------------------------


def test_one_error_in_each_faces_words(provider):
    from copgen_beta.plugin.qgisui.errors import describe_error

    with pytest.raises(InputError) as caught:
        GenerationRequest(generate=["dem"], extent=(0, 0, 1, 1, "EPSG:32633"), steps=0)
    error = caught.value
    assert error.field == "steps" and str(error) == "steps: must be a whole number >= 1, got 0"
    assert describe(error) == "--steps: must be a whole number >= 1, got 0"
    labels = generate_algorithm().create().labels()
    assert describe_error(error, labels) == "Solver steps (network calls): must be a whole number >= 1, got 0"
    # a more specific field falls back to the entry of its parent
    bands = InputError("cannot tell which bands", "conditions.s2_l2a.bands")
    assert describe(bands) == "--condition s2_l2a=FILE:BANDS: cannot tell which bands"
    assert describe_error(bands, labels) == f"{LABELS['s2_l2a']} condition: cannot tell which bands"


def test_qgis_run_reports_a_request_error_with_the_label(provider, tile, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    parameters = {"S2_L2A": str(tile), "S2_L2A_RED": 4, "S2_L2A_GREEN": 3, "S2_L2A_BLUE": 2,
                  "GENERATE": [3], "STEPS": 2, "OUTPUT_FOLDER": str(tmp_path / "out")}
    with pytest.raises(QgsProcessingException, match=f"\n{LABELS['s2_l2a']} condition: both generated"):
        processing.run("copgen:generate", parameters)
    assert not (tmp_path / "out").exists()


# -- one request, two faces, the same files ----------------------------------------------------


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.read_masks(1), ds.profile["crs"], ds.transform, ds.descriptions, ds.tags()


@pytest.mark.timeout(600)
def test_the_same_request_through_cli_and_qgis_writes_identical_files(provider, tiny_model_dir, tile, tmp_path):
    import processing

    seed, steps = 1, 2
    run_name = f"{tile.stem}_seed{seed}"  # what the QGIS face names a run of this layer
    code = main([
        "generate", "--model", str(tiny_model_dir), "--device", "cpu", "--condition", f"s2_l2a={tile}:4,3,2",
        "--generate", "dem,s1_rtc", "--seed", str(seed), "--steps", str(steps), "--samples", "2",
        "--run-name", run_name, "--out", str(tmp_path / "cli"),
    ])
    assert code == 0
    result = processing.run("copgen:generate", {
        "S2_L2A": str(tile), "S2_L2A_RED": 4, "S2_L2A_GREEN": 3, "S2_L2A_BLUE": 2,
        "GENERATE": [0, 1], "SEED": seed, "STEPS": steps, "SAMPLES": 2, "OUTPUT_FOLDER": str(tmp_path / "qgis"),
    })
    cli_files = sorted(path.name for path in (tmp_path / "cli").iterdir())
    qgis_files = sorted(path.name for path in (tmp_path / "qgis").iterdir())
    assert cli_files == qgis_files == sorted(
        GenerationRequest(generate=["dem", "s1_rtc"], conditions=[_Spec()], samples=2, run_name=run_name).output_names()
    )
    assert sorted(result["OUTPUT_FILES"]) == [str(tmp_path / "qgis" / name) for name in qgis_files]
    for name in cli_files:
        cli, qgis = read(tmp_path / "cli" / name), read(tmp_path / "qgis" / name)
        np.testing.assert_array_equal(cli[0], qgis[0])  # pixels
        np.testing.assert_array_equal(cli[1], qgis[1])  # mask
        assert cli[2:5] == qgis[2:5]  # CRS, transform, band descriptions
        cli_tags, qgis_tags = ({k: v for k, v in tags.items() if k not in DATE_TAGS} for tags in (cli[5], qgis[5]))
        assert cli_tags == qgis_tags
        assert cli_tags["seed"] == str(seed) and cli_tags["steps"] == str(steps)
    first, second = (read(tmp_path / "cli" / f"{run_name}_dem_sample{k}.tif")[0] for k in (1, 2))
    assert not np.array_equal(first, second)  # two samples really differ


class _Spec:
    modality = "s2_l2a"
    label = TILE
