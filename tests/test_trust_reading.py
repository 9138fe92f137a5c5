"""Read only what the user named: hostile condition, AOI and cells-layer files built at run time,
given to the real commands; nothing outside them is read, no request leaves the machine, a
secret's bytes never reach an output, and a named pipe never blocks a command."""

import os
import socket
import threading

import numpy as np
import pytest
from _faults import error_line, run_cli
from _geo_helpers import write_raster

PIXELS = np.random.default_rng(1).integers(1, 3000, (3, 64, 64)).astype(np.uint16)
SECRET = b"TOP-SECRET-" + bytes(range(256)) * 16


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts (any request)."""

    def __init__(self):
        self.count = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.1)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _serve(self):
        while not self._stop:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self.count += 1
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join(timeout=5)
        self._socket.close()


def _secret(folder):
    path = folder / "secret.bin"
    path.write_bytes(SECRET)
    return path


def _raw_vrt(path, source):
    path.write_text(
        '<VRTDataset rasterXSize="64" rasterYSize="64">\n'
        + "".join(
            f'  <VRTRasterBand dataType="UInt16" band="{band}" subClass="VRTRawRasterBand">'
            f'<SourceFilename relativeToVRT="0">{source}</SourceFilename><ImageOffset>0</ImageOffset>'
            "<PixelOffset>2</PixelOffset><LineOffset>128</LineOffset></VRTRasterBand>\n"
            for band in (1, 2, 3)
        )
        + "</VRTDataset>\n"
    )
    return path


def _simple_vrt(path, source, relative=False):
    path.write_text(
        '<VRTDataset rasterXSize="64" rasterYSize="64">'
        '<SRS>EPSG:32633</SRS><GeoTransform>400000, 10, 0, 5000000, 0, -10</GeoTransform>'
        + "".join(
            f'<VRTRasterBand dataType="UInt16" band="{band}"><SimpleSource>'
            f'<SourceFilename relativeToVRT="{int(relative)}">{source}</SourceFilename>'
            f"<SourceBand>{band}</SourceBand></SimpleSource></VRTRasterBand>"
            for band in (1, 2, 3)
        )
        + "</VRTDataset>"
    )
    return path


def _prepare(tmp_path, source):
    out = tmp_path / "out" / "r.tif"
    out.parent.mkdir(exist_ok=True)
    result = run_cli(["prepare", "--modality", "s2_l2a", "--input", source, "--out", out], timeout=120)
    return result, out


def _assert_nothing_leaked(result, out):
    secret = SECRET[:64]
    assert secret.decode("latin-1") not in result.stdout + result.stderr
    for path in out.parent.rglob("*"):
        assert path.is_file() and secret not in path.read_bytes(), path
    assert not out.exists()


@pytest.mark.timeout(150)
def test_a_vrt_reading_raw_bytes_of_another_file_is_refused(tmp_path):
    secret = _secret(tmp_path)
    vrt = _raw_vrt(tmp_path / "scene.vrt", secret)
    from osgeo import gdal

    # the hostile input is real: this GDAL reads the secret through it (even with its own switch off)
    gdal.SetConfigOption("GDAL_VRT_ENABLE_RAWRASTERBAND", "NO")
    try:
        dataset = gdal.Open(str(vrt))  # kept: a band outliving its dataset crashes GDAL
        assert dataset.GetRasterBand(1).ReadAsArray().tobytes()[:len(SECRET)] == SECRET
        dataset = None
    finally:
        gdal.SetConfigOption("GDAL_VRT_ENABLE_RAWRASTERBAND", None)
    result, out = _prepare(tmp_path, vrt)
    assert result.returncode == 1
    line = error_line(result)
    assert str(vrt) in line and str(secret) in line and "VRTRawRasterBand" in line
    _assert_nothing_leaked(result, out)


@pytest.mark.timeout(150)
def test_a_vrt_with_a_source_outside_its_folder_is_refused(tmp_path):
    outside = write_raster(tmp_path / "private.tif", PIXELS)
    (tmp_path / "shared").mkdir()
    for source, relative in ((outside, False), ("../private.tif", True)):
        vrt = _simple_vrt(tmp_path / "shared" / "scene.vrt", source, relative)
        result, out = _prepare(tmp_path, vrt)
        assert result.returncode == 1
        line = error_line(result)
        assert str(vrt) in line and str(source) in line and "outside" in line
        assert not out.exists()


@pytest.mark.timeout(150)
def test_a_vrt_of_files_beside_it_is_read(tmp_path):
    write_raster(tmp_path / "b.tif", PIXELS)
    vrt = _simple_vrt(tmp_path / "scene.vrt", "b.tif", relative=True)
    result, out = _prepare(tmp_path, vrt)
    assert result.returncode == 0, result.stderr
    assert out.is_file()


@pytest.mark.timeout(200)
def test_network_sources_are_never_requested(tmp_path):
    with ConnectionCounter() as server:
        url = f"/vsicurl/{server.url}/scene.tif"
        vrt = _simple_vrt(tmp_path / "remote.vrt", url)
        wms = tmp_path / "tiles.xml"
        wms.write_text(
            f"<GDAL_WMS><Service name=\"TMS\"><ServerUrl>{server.url}/${{z}}/${{x}}/${{y}}.png</ServerUrl></Service>"
            "<DataWindow><UpperLeftX>-20037508.34</UpperLeftX><UpperLeftY>20037508.34</UpperLeftY>"
            "<LowerRightX>20037508.34</LowerRightX><LowerRightY>-20037508.34</LowerRightY>"
            "<TileLevel>18</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY></DataWindow>"
            "<Projection>EPSG:3857</Projection><BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>"
            "<BandsCount>3</BandsCount></GDAL_WMS>"
        )
        for source, named in ((url, url), (vrt, url), (wms, "WMS")):
            result, out = _prepare(tmp_path, source)
            assert result.returncode == 1
            line = error_line(result)
            assert str(source) in line and named in line
            assert not out.exists()
    assert server.count == 0


def _ogr_vrt(path, source):
    path.write_text(
        f'<OGRVRTDataSource><OGRVRTLayer name="aoi"><SrcDataSource>{source}</SrcDataSource>'
        "</OGRVRTLayer></OGRVRTDataSource>"
    )
    return path


@pytest.mark.timeout(200)
def test_vector_files_that_read_elsewhere_are_refused(tmp_path):
    with ConnectionCounter() as server:
        remote = _ogr_vrt(tmp_path / "aoi.vrt", f"/vsicurl/{server.url}/aoi.geojson")
        for args, label in (
            (["cells", "--aoi", remote, "--out", tmp_path / "cells.gpkg"], str(remote)),
            (["cells", "--aoi", f"/vsicurl/{server.url}/aoi.geojson", "--out", tmp_path / "cells.gpkg"], "/vsicurl/"),
            (["dataset", "--cells-layer", remote, "--generate", "dem", "--model", tmp_path, "--out", tmp_path / "ds"],
             str(remote)),
        ):
            result = run_cli(args, timeout=60)
            assert result.returncode == 1
            line = error_line(result)
            assert label in line and ("OGR_VRT" in line or "network source" in line)
            assert not (tmp_path / "cells.gpkg").exists() and not (tmp_path / "ds").exists()
    assert server.count == 0


@pytest.mark.timeout(120)
def test_named_pipes_are_refused_at_once(tmp_path):
    pipe = tmp_path / "pipe.tif"
    os.mkfifo(pipe)
    for args in (
        ["prepare", "--modality", "s2_l2a", "--input", pipe, "--out", tmp_path / "r.tif"],
        ["cells", "--aoi", pipe, "--out", tmp_path / "cells.gpkg"],
        ["dataset", "--cells-layer", pipe, "--generate", "dem", "--model", tmp_path, "--out", tmp_path / "ds"],
    ):
        result = run_cli(args, timeout=60)  # a reader blocked on the pipe would time out here
        assert result.returncode == 1
        line = error_line(result)
        assert str(pipe) in line and "named pipe" in line


@pytest.mark.timeout(120)
def test_a_raster_whose_one_block_unpacks_to_hundreds_of_mib_is_refused(tmp_path):
    import rasterio
    from affine import Affine

    # 1.3 MB on disk, one 12000 x 12000 px strip of 3 bands: 823 MiB once decompressed
    bomb = tmp_path / "strip.tif"
    profile = dict(driver="GTiff", width=12000, height=12000, count=3, dtype="uint16", crs="EPSG:32633",
                   transform=Affine(10, 0, 400000, 0, -10, 5000000), compress="deflate", tiled=False,
                   blockysize=12000)
    with rasterio.open(bomb, "w", **profile) as ds:
        for band in (1, 2, 3):
            ds.write(np.full((12000, 12000), 1000 + band, np.uint16), band)
    assert bomb.stat().st_size < 5 << 20
    out = tmp_path / "out" / "r.tif"
    out.parent.mkdir()
    result = run_cli(["prepare", "--modality", "s2_l2a", "--input", bomb, "--extent", "400000,4997440,402560,5000000,32633",
                      "--out", out], timeout=60)
    assert result.returncode == 1
    line = error_line(result)
    assert str(bomb) in line and "12000 x 12000 px" in line and "TILED=YES" in line
    assert not out.exists()
