"""`python -m plugin cells` and the QGIS algorithm *Major TOM cells of an area* write the same layer."""

import subprocess
import sys

import pytest
from osgeo import ogr
from shapely import wkb

from plugin.geo.majortom import cell_named

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
# An area across the Brazilian bundled tile's cell, in the tile's UTM zone (22S).
EXTENT_UTM = (781000.0, 7194000.0, 806000.0, 7210000.0)


def read_layer(path):
    source = ogr.Open(str(path))
    layer = source.GetLayer(0)
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "4326"
    return {feature.GetField("name"): (feature.GetField("epsg"), wkb.loads(bytes(feature.GetGeometryRef().ExportToIsoWkb())))
            for feature in layer}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "plugin", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(120)
def test_cli_writes_the_cells_of_an_extent(tmp_path):
    out = tmp_path / "cells.gpkg"
    result = run_cli("cells", "--extent", ",".join(map(str, EXTENT_UTM)) + ",32722", "--out", str(out))
    assert result.returncode == 0, result.stderr
    cells = read_layer(out)
    assert "282D_485L" in cells and len(cells) >= 6
    assert {epsg for epsg, _ in cells.values()} == {32722, 32723}
    for name, (epsg, footprint) in cells.items():
        cell = cell_named(name)
        assert epsg == cell.epsg  # 22S, and 23S east of 48 W
        assert footprint.equals_exact(cell.footprint(), 1e-9)
    assert not list(tmp_path.glob(".*"))  # no partial file left


@pytest.mark.timeout(60)
def test_cli_refuses_bad_areas_in_one_line(tmp_path):
    result = run_cli("cells", "--extent", "1,2,3", "--out", str(tmp_path / "c.gpkg"))
    assert result.returncode == 1 and result.stderr.strip() == "error: --extent: '1,2,3': expected xmin,ymin,xmax,ymax[,EPSG]"
    result = run_cli("cells", "--extent", "1,2,3,4", "--out", str(tmp_path / "none" / "c.gpkg"))
    assert result.returncode == 1 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "c.gpkg").exists()


@pytest.mark.timeout(60)
def test_cli_writes_a_whole_shapefile(tmp_path):
    # a Shapefile is four files: all of them must get the final name, none stay under a temporary one
    out = tmp_path / "cells.shp"
    result = run_cli("cells", "--extent", ",".join(map(str, EXTENT_UTM)) + ",32722", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cells.dbf", "cells.prj", "cells.shp", "cells.shx"]
    cells = {}
    source = ogr.Open(str(out))
    for feature in source.GetLayer(0):
        cells[feature.GetField("name")] = feature.GetField("epsg")
    assert cells["282D_485L"] == 32722 and len(cells) >= 6


@pytest.mark.timeout(60)
def test_cli_never_writes_over_its_aoi_nor_takes_latitudes_past_the_poles(tmp_path):
    aoi = tmp_path / "aoi.gpkg"
    assert run_cli("cells", "--extent", ",".join(map(str, EXTENT_UTM)) + ",32722", "--out", str(aoi)).returncode == 0
    before = aoi.read_bytes()
    result = run_cli("cells", "--aoi", str(aoi), "--out", str(aoi))
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: --out {aoi} is the input {aoi}")
    assert aoi.read_bytes() == before
    result = run_cli("cells", "--extent=-51.3,-95.4,-51.2,-25.3", "--out", str(tmp_path / "c.gpkg"))
    assert result.returncode == 1 and result.stderr.startswith("error: --extent: ") and "-90..90" in result.stderr
    assert not (tmp_path / "c.gpkg").exists()


@pytest.mark.timeout(180)
def test_qgis_algorithm_writes_the_same_layer_as_the_cli(tmp_path):
    pytest.importorskip("qgis.core")
    from qgis_support import qgis_application

    qgis_application()
    import processing

    from plugin.qgisui.algorithms import algorithm_classes
    from plugin.qgisui.algorithms.cells import CellsAlgorithm

    assert CellsAlgorithm in algorithm_classes()  # registered in the provider
    cli_out, qgis_out = tmp_path / "cli.gpkg", tmp_path / "qgis.gpkg"
    assert run_cli("cells", "--extent", ",".join(map(str, EXTENT_UTM)) + ",32722", "--out", str(cli_out)).returncode == 0
    xmin, ymin, xmax, ymax = EXTENT_UTM
    result = processing.run(CellsAlgorithm(), {"EXTENT": f"{xmin},{xmax},{ymin},{ymax} [EPSG:32722]", "OUTPUT": str(qgis_out)})
    assert result["OUTPUT"]
    cli, qgis = read_layer(cli_out), read_layer(qgis_out)
    assert sorted(cli) == sorted(qgis)
    for name in cli:
        assert cli[name][0] == qgis[name][0]
        assert cli[name][1].equals_exact(qgis[name][1], 1e-9)


def test_qgis_algorithm_without_an_area_names_the_labels_not_ids(tmp_path):
    pytest.importorskip("qgis.core")
    from qgis_support import qgis_application

    qgis_application()
    import processing
    from qgis.core import QgsProcessingException

    from plugin.qgisui.algorithms.cells import CellsAlgorithm

    with pytest.raises(QgsProcessingException) as error:
        processing.run(CellsAlgorithm(), {"OUTPUT": str(tmp_path / "cells.gpkg")})
    message = str(error.value)
    assert message.startswith("Area or Area of interest polygons:"), message
    assert "EXTENT" not in message and "AOI" not in message and not (tmp_path / "cells.gpkg").exists()


def test_cli_reads_an_extent_west_and_south_of_zero_as_written(tmp_path):
    # The README's own sample cell lies in Brazil: "--extent -49.2,..." must not read as an option.
    out = tmp_path / "cells.gpkg"
    result = run_cli("cells", "--extent", "-48.11,-25.32,-48.10,-25.31", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "282D_485L" in read_layer(out)  # the cell of the bundled sample tile
