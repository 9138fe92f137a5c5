"""The comparison sheet of COP-GEN-Beta's combinations on a real tile smaller than its grid: the
real tile and the generated layers are shown over the same pixels (no nodata rim around the real
tile while the generated one fills it). Tiny random model: the pictures mean nothing, their frames do."""

import numpy as np
import pytest
from osgeo import gdal

pytestmark = pytest.mark.timeout(300)
THUMBNAILS = {"dem": "dem", "s1_rtc": "s1rtc", "s2_l1c": "s2l1c"}


@pytest.fixture(scope="module")
def conditions(shared_dir, tmp_path_factory):
    """The real 224 px S2 L2A tile (its 10 m grid is padded to 256 px: a 16 px nodata rim) and
    the other three modalities' thumbnails georeferenced over a wider area around it."""
    from plugin.geo.condition_spec import ConditionSpec

    tile = shared_dir / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"
    folder = tmp_path_factory.mktemp("thumbnails")
    left, top = 790236.0403820039 - 160, 7198039.252334285 + 160
    specs = {"s2_l2a": ConditionSpec("s2_l2a", str(tile))}
    for modality, name in THUMBNAILS.items():
        path = folder / f"{name}.tif"
        source = gdal.Open(str(shared_dir / "data" / "copgen_beta_thumbnails" / f"{name}.webp"))
        gdal.Translate(str(path), source, outputSRS="EPSG:32722", outputBounds=[left, top, left + 2560, top - 2560])
        specs[modality] = ConditionSpec(modality, str(path), source="thumbnail")
    return specs


def test_real_and_generated_cells_show_the_same_pixels(tiny_model_dir, conditions, tmp_path, monkeypatch):
    from plugin import engine
    from plugin.analysis import combinations

    captured = {}
    write_sheet = combinations.write_sheet

    def keep_rows(rows, path):  # the rows as drawn, then the real writer
        captured["rows"] = rows
        return write_sheet(rows, path)

    monkeypatch.setattr(combinations, "write_sheet", keep_rows)
    combinations.run_combinations(engine.load(tiny_model_dir), conditions, tmp_path / "runs", tmp_path / "sheet.png",
                                  steps=1)
    assert (tmp_path / "sheet.png").is_file()
    for row in captured["rows"]:
        real = row.real["s2_l2a"]
        assert real.shape[1:] == (224, 224)  # the tile's own pixels, its rim cropped
        assert real[:, 0].any() and real[:, -1].any() and real[:, :, 0].any() and real[:, :, -1].any()
        if "s2_l2a" in row.generated:
            generated = row.generated["s2_l2a"]
            assert generated.shape == real.shape  # the same crop, the same pixels
        for modality, image in row.generated.items():  # every other modality: over its real one's pixels
            assert image.shape == row.real[modality].shape
