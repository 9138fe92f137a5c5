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
