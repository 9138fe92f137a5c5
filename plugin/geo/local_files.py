"""Only what the user named is read: every raster or vector file a user gives (a condition, an
AOI, a cells layer) is checked here before GDAL opens it.

GDAL reads far more than plain files: ``/vsicurl/`` URLs, connection strings (``vrt://``,
``NETCDF:``), VRTs whose sources are other files, other hosts, or the raw bytes of any file
(``VRTRawRasterBand``), WMS/STAC descriptions that fetch from the network. A shared file must
not make the plugin read other files on the machine or send requests, so a named input must be a
local regular file (not a pipe, which would block the reader forever) in a self-contained format
(:data:`RASTER_DRIVERS`, :data:`VECTOR_DRIVERS`); a VRT is read only when every source is such a
file inside the VRT's own folder; and once opened, every file GDAL reports using must lie in the
named file's folder. Network sources (``http(s)://`` URLs, ``/vsicurl/``) are refused unless the
user opts in (:func:`allow_network`, the command line's ``--allow-network``): then a named URL in
an allowed format is handed to GDAL through ``/vsicurl/``; VRTs and their sources stay local.
"""

import os
import re
import stat
import xml.etree.ElementTree as ElementTree

from osgeo import gdal

from ..engine.errors import InputError

# Formats whose files hold their own pixels (their sidecars: .aux.xml, .ovr, .hdr, ... sit beside)
RASTER_DRIVERS = frozenset({
    "GTiff", "COG", "JP2OpenJPEG", "JPEG", "PNG", "WEBP", "GIF", "BMP", "HFA", "ENVI", "EHdr",
    "AAIGrid", "GSBG", "GS7BG", "XYZ", "RST", "SAGA", "PCIDSK", "GPKG", "SENTINEL2", "SAFE",
})
VECTOR_DRIVERS = frozenset({
    "GPKG", "GeoJSON", "GeoJSONSeq", "ESRI Shapefile", "FlatGeobuf", "KML", "MapInfo File",
    "ESRIJSON", "TopoJSON",
})
VRT_DRIVER = "VRT"
MAX_BLOCK_BYTES = 256 << 20  # one block of a raster, decompressed: reading a window unpacks whole blocks
_MAX_VRT_BYTES = 16 << 20  # a VRT is a small XML description
_MAX_VRT_DEPTH = 8  # VRTs of VRTs
_SOURCE_TAGS = {"SourceFilename", "SourceDataset"}
# "scheme:" or "DRIVER:" prefixes (URLs, connection strings); one letter is a Windows drive
_CONNECTION = re.compile(r"^[A-Za-z][A-Za-z0-9_+.-]+:")
_NETWORK = re.compile(r"^(/vsicurl/|https?://)", re.IGNORECASE)
# the opt-in, an environment variable so that the worker processes a run starts inherit it
NETWORK_SWITCH = "COPGEN_ALLOW_NETWORK"

# GDAL's own switch GDAL_VRT_ENABLE_RAWRASTERBAND=NO does not stop raw bands on GDAL 3.6 (tested),
# so this module's checks are what keeps them out.

_checked = {}  # (path, identity, kind) -> None: a file checked once per version of it


def check_local_file(path, what, field=None):
    """``path`` as an absolute local path; InputError naming ``what`` unless it is an existing
    regular file on this machine (a GDAL virtual path, URL, pipe or device is refused)."""
    text = os.fspath(path)
    named = _named(what, text)
    if _NETWORK.match(text):
        raise InputError(f"{named} is a network source; it is read only when network access is allowed "
                         "(the command line's --allow-network)", field)
    if text.startswith("/vsi") or _CONNECTION.match(text):
        raise InputError(f"{named} is not a local file (network and GDAL virtual paths are not read)", field)
    try:
        status = os.stat(text)  # never opens: a named pipe does not block here
    except OSError as exc:
        raise InputError(f"{named}: cannot read it ({exc.strerror or exc})", field) from None
    if not stat.S_ISREG(status.st_mode):
        kind = "a named pipe" if stat.S_ISFIFO(status.st_mode) else "a folder" if stat.S_ISDIR(status.st_mode) else "not a regular file"
        raise InputError(f"{named} is {kind}; give a raster or vector file", field)
    return os.path.abspath(text), (status.st_ino, status.st_size, status.st_mtime_ns)


def _named(what, path):
    """``what`` and ``path`` for a message, the path once (``what`` often is the path)."""
    return str(what) if str(path) in str(what) else f"{what}: {path}"


def check_raster(path, what, field=None):
    """The absolute path of a user raster that may be opened: see the module docstring."""
    return _check(path, what, field, gdal.OF_RASTER, RASTER_DRIVERS)


def check_vector(path, what, field=None):
    """The absolute path of a user vector file that may be opened: see the module docstring."""
    return _check(path, what, field, gdal.OF_VECTOR, VECTOR_DRIVERS)


def allow_network():
    """Let this process (and the workers it starts from now on) read named network sources."""
    os.environ[NETWORK_SWITCH] = "1"


def is_network(path):
    """Whether ``path`` names a network source (an http(s) URL or a /vsicurl/ path)."""
    return bool(_NETWORK.match(os.fspath(path)))


def network_allowed():
    return os.environ.get(NETWORK_SWITCH) == "1"


def _check_network(text, what, field, kind, allowed):
    """The /vsicurl/ name of an opted-in network source, once GDAL identifies an allowed format
    there (a VRT or WMS description could name further hosts or files: refused)."""
    name = text if text.startswith("/vsi") else "/vsicurl/" + text
    driver = _identify(name, kind)
    if driver is not None and driver not in allowed:
        raise InputError(f"{_named(what, text)} is a {driver} file, a format that can read other files or hosts; "
                         "save it as a GeoTIFF (rasters) or GeoPackage (vectors)", field)
    return name


def _check(path, what, field, kind, allowed):
    text = os.fspath(path)
    if network_allowed() and _NETWORK.match(text):
        return _check_network(text, what, field, kind, allowed)
    absolute, identity = check_local_file(path, what, field)
    key = (absolute, identity, kind)
    if key not in _checked:
        driver = _identify(absolute, kind)
        if driver == VRT_DRIVER and kind == gdal.OF_RASTER:
            _check_vrt(absolute, what, field, 0)
        elif driver is not None and driver not in allowed:
            raise InputError(
                f"{_named(what, absolute)} is a {driver} file, a format that can read other files or the network; "
                "save it as a GeoTIFF (rasters) or GeoPackage (vectors)", field
            )
        if driver is not None:
            _check_file_list(absolute, what, field, kind)
        _checked[key] = None
    return absolute


def _identify(path, kind):
    try:
        driver = gdal.IdentifyDriverEx(path, kind)
    except RuntimeError:  # GDAL exceptions on (QGIS)
        driver = None
    return driver.ShortName if driver is not None else None


def _check_vrt(path, what, field, depth):
    """Every source of the VRT at ``path`` (and of VRTs it uses) is an allowed local file inside
    the VRT's folder; raw-byte bands and pixel-function code are refused."""
    if depth > _MAX_VRT_DEPTH:
        raise InputError(f"{_named(what, path)} nests VRTs more than {_MAX_VRT_DEPTH} deep", field)
    if os.path.getsize(path) > _MAX_VRT_BYTES:
        raise InputError(f"{_named(what, path)} is a VRT of over {_MAX_VRT_BYTES >> 20} MiB", field)
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError, ValueError) as exc:
        raise InputError(f"{_named(what, path)} is not a readable VRT ({exc})", field) from None
    folder = os.path.realpath(os.path.dirname(path))
    for element in root.iter():
        sub_class = element.get("subClass", "")
        if sub_class == "VRTRawRasterBand":
            source = element.findtext("SourceFilename", default="?")
            raise InputError(f"{_named(what, path)} refused: source {source} is read as raw bytes (VRTRawRasterBand)", field)
        if element.tag in ("PixelFunctionCode", "PixelFunctionLanguage") or "Python" in sub_class:
            raise InputError(f"{_named(what, path)} refused: it holds pixel-function code", field)
        if element.tag in _SOURCE_TAGS:
            _check_vrt_source(path, folder, element, what, field, depth)


def _check_vrt_source(vrt, folder, element, what, field, depth):
    source = (element.text or "").strip()
    refused = f"{_named(what, vrt)} refused: source {source}"
    if source.startswith("/vsi") or _CONNECTION.match(source):
        raise InputError(f"{refused} is not a local file (network and GDAL virtual paths are not read)", field)
    flags = {name.lower(): value for name, value in element.attrib.items()}
    beside_vrt = os.path.join(os.path.dirname(vrt), source)
    # GDAL reads a relative path without relativeToVRT="1" from the working folder: both must hold
    candidates = [beside_vrt] if flags.get("relativetovrt") == "1" else [source, beside_vrt]
    resolved = [os.path.realpath(candidate) for candidate in candidates]
    if any(os.path.commonpath([folder, one]) != folder for one in resolved):
        raise InputError(f"{refused} lies outside the VRT's folder {folder}", field)
    resolved = resolved[0]
    try:
        absolute, _ = check_local_file(resolved, refused, field)
    except InputError as exc:
        raise InputError(str(exc), field) from None
    driver = _identify(absolute, gdal.OF_RASTER)
    if driver == VRT_DRIVER:
        _check_vrt(absolute, what, field, depth + 1)
    elif driver not in RASTER_DRIVERS:
        raise InputError(f"{refused} is {'not a raster' if driver is None else 'a ' + driver + ' file'}", field)


def _check_file_list(path, what, field, kind):
    """Once opened, every file GDAL says the dataset uses lies in the named file's folder, and no
    block of a raster decompresses to more than MAX_BLOCK_BYTES (a window is read block by block)."""
    folder = os.path.realpath(os.path.dirname(path))
    try:
        dataset = gdal.OpenEx(path, kind | gdal.OF_READONLY)
    except RuntimeError:
        dataset = None
    if dataset is None:
        return  # the reader reports a file it cannot read, in its own words
    for used in dataset.GetFileList() or []:
        resolved = os.path.realpath(used)
        if used.startswith("/vsi") or os.path.commonpath([folder, resolved]) != folder:
            raise InputError(f"{_named(what, path)} refused: it reads {used}, outside its folder {folder}", field)
    if kind == gdal.OF_RASTER and dataset.RasterCount:
        band = dataset.GetRasterBand(1)
        width, height = band.GetBlockSize()
        interleaved = dataset.GetMetadataItem("INTERLEAVE", "IMAGE_STRUCTURE") == "PIXEL"
        size = width * height * gdal.GetDataTypeSize(band.DataType) // 8 * (dataset.RasterCount if interleaved else 1)
        if size > MAX_BLOCK_BYTES:
            raise InputError(
                f"{_named(what, path)} is stored in blocks of {width} x {height} px ({size >> 20} MiB each once "
                f"decompressed, more than {MAX_BLOCK_BYTES >> 20} MiB), so reading any window would unpack "
                "all of it; rewrite it tiled (gdal_translate -co TILED=YES)", field)
