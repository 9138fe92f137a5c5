"""The Sentinel-2 DN offset read from what GDAL exposes about a product (plugin.geo.s2_offset)."""

import argparse

import numpy as np
import pytest
from osgeo import gdal

from plugin.commands.options import s2_offset as parse_s2_offset
from plugin.geo.condition_spec import ConditionSpec
from plugin.geo.s2_offset import detect_s2_offset


def product(path, dataset_tags=None, band_tags=None):
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 8, 8, 3, gdal.GDT_UInt16)
    ds.SetGeoTransform((500000, 10, 0, 5000000, 0, -10))
    ds.SetProjection("EPSG:32633")
    for band in range(1, 4):
        ds.GetRasterBand(band).WriteArray(np.full((8, 8), 1500, np.uint16))
        if band_tags:
            ds.GetRasterBand(band).SetMetadata(band_tags)
    if dataset_tags:
        ds.SetMetadata(dataset_tags)
    ds = None
    return path


@pytest.mark.parametrize(
    "name, dataset_tags, band_tags, value, told",
    [
        ("a.tif", {"PROCESSING_BASELINE": "04.00", "BOA_ADD_OFFSET_B4": "-1000"}, None, 1000, "BOA_ADD_OFFSET_B4"),
        ("a.tif", None, {"RADIO_ADD_OFFSET": "-1000"}, 1000, "RADIO_ADD_OFFSET"),  # L1C, per band
        ("a.tif", {"PROCESSING_BASELINE": "04.00"}, None, 1000, "processing baseline 04.00"),
        ("a.tif", {"PROCESSING_BASELINE": "03.01"}, None, 0, "processing baseline 03.01"),
        ("a.tif", {"PRODUCT_URI": "S2A_MSIL2A_20230101T101421_N0509_R022_T32TQM_20230101T120000.SAFE"}, None, 1000,
         "05.09"),
        ("S2A_MSIL1C_20210101T101421_N0209_R022_T32TQM_20210101T120000.tif", None, None, 0, "02.09"),
        ("a.tif", None, None, 0, "0 assumed"),
    ],
)
def test_offset_from_metadata_else_name_else_zero(tmp_path, name, dataset_tags, band_tags, value, told):
    found = detect_s2_offset(product(tmp_path / name, dataset_tags, band_tags))
    assert found.value == value
    assert told in found.reason


def test_auto_in_a_condition_resolves_and_is_recorded(tmp_path):
    path = product(tmp_path / "p.tif", {"PROCESSING_BASELINE": "04.00"})
    spec = ConditionSpec("s2_l2a", path, s2_offset="auto")
    assert spec.s2_offset == 1000 and "04.00" in spec.s2_offset_note
    assert ConditionSpec("s2_l2a", path, s2_offset=0).s2_offset_note is None  # a manual value overrides
    assert ConditionSpec("dem", path, s2_offset="auto").s2_offset == 0


def test_cli_option_takes_auto_or_a_number():
    assert parse_s2_offset("auto") == "auto" and parse_s2_offset("1000") == 1000.0
    with pytest.raises(argparse.ArgumentTypeError):
        parse_s2_offset("-1")


# --- COP-GEN: the same rule on its Sentinel-2 conditions, and its outputs say theirs -----------

def _offset_tile(tmp_path, tags):
    """The Major TOM tile as a product of processing baseline 04.00+ would store it: every valid
    DN 1000 higher, with ``tags`` as its metadata."""
    import rasterio

    from _geo_helpers import S2_TILE

    path = tmp_path / "offset_tile.tif"
    with rasterio.open(S2_TILE) as source:
        data = source.read().astype(np.int32)
        profile = {**source.profile, "dtype": "uint16", "nodata": 0}
    with rasterio.open(path, "w", **profile) as out:
        out.write(np.where(data > 0, data + 1000, 0).astype(np.uint16))
        out.update_tags(**tags)
    return path


def test_copgen_s2_condition_has_its_product_offset_subtracted_with_a_note(tmp_path):
    from _geo_helpers import S2_TILE
    from plugin.geo.lattice import ModelLattice
    from plugin.geo.physical_conditions import read_all
    from plugin.geo.physical_pipeline import PhysicalConditionSpec

    shifted = _offset_tile(tmp_path, {"BOA_ADD_OFFSET_B4": "-1000"})
    spec = PhysicalConditionSpec("s2l2a", shifted)
    assert spec.s2_offset == 1000 and "BOA_ADD_OFFSET_B4" in spec.s2_offset_note
    lattice = ModelLattice.from_raster(S2_TILE)
    with spec.reader(lattice) as reader:
        got = read_all(reader)
    with PhysicalConditionSpec("s2l2a", S2_TILE).reader(lattice) as reader:
        plain = read_all(reader)
    for key, (values, valid) in plain.items():
        assert np.array_equal(got[key][1], valid)
        np.testing.assert_allclose(got[key][0][:, valid], values[:, valid], atol=1e-3)
    assert any("1000 subtracted" in note and "BOA_ADD_OFFSET_B4" in note for note in got.notes), got.notes
    assert not any("subtracted" in note for note in plain.notes)
    # a number given overrides what the product says; non-S2 sensors have nothing to subtract
    assert PhysicalConditionSpec("s2l2a", shifted, s2_offset=0).s2_offset == 0
    assert PhysicalConditionSpec("dem", shifted).s2_offset == 0
    with pytest.raises(Exception) as error:
        PhysicalConditionSpec("s2l2a", shifted, s2_offset=-5)
    assert error.value.field == "conditions.s2l2a.s2_offset"


def test_copgen_s2_outputs_say_their_offset_rule_and_read_back_with_none(tmp_path):
    import rasterio

    from plugin.geo.lattice import ModelLattice
    from plugin.geo.physical_outputs import write_physical

    lattice = ModelLattice.from_extent(500000, 4000000, 501920, 4001920, 32631)
    grid = lattice.grid(60)
    path = write_physical(tmp_path / "b01_b09.tif", lattice, "S2L2A_B01_B09",
                          np.full((2, grid.height, grid.width), 1234.0, np.float32))
    with rasterio.open(path) as ds:
        assert "DN / 10000" in ds.tags()["offset_rule"] and "no processing-baseline DN offset" in ds.tags()["offset_rule"]
        assert ds.scales == (1e-4, 1e-4) and ds.offsets == (0.0, 0.0)
        assert ds.tags(1)["BOA_ADD_OFFSET"] == "0"
    found = detect_s2_offset(path)  # fed back as a condition, nothing is subtracted
    assert found.value == 0 and "BOA_ADD_OFFSET = 0" in found.reason
    l1c = write_physical(tmp_path / "l1c.tif", lattice, "S2L1C_B01_B09_B10",
                         np.full((3, grid.height, grid.width), 1234.0, np.float32))
    with rasterio.open(l1c) as ds:
        assert ds.tags(2)["RADIO_ADD_OFFSET"] == "0"
