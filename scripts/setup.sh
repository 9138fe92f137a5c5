#!/usr/bin/env bash
# Sets up everything the plugin, its command line and its tests need on Debian 12 / Ubuntu:
# Debian's QGIS and geo stack, then a venv (on /usr/bin/python3, seeing the system packages)
# with the pinned pip-only dependencies. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  qgis python3-qgis qgis-providers          # QGIS 3.22, its Python bindings, qgis_process
  python3-gdal python3-rasterio python3-pyproj python3-shapely proj-bin proj-data
  python3-venv python3-pip
  xvfb xauth                                 # real QGIS windows for screenshots / GUI tests
)

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# System site packages make qgis, osgeo, rasterio and Debian's numpy visible in the venv.
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
# Never let pip replace the numpy that Debian's GDAL and QGIS bindings were built against.
.venv/bin/python -c 'import numpy; print(f"numpy=={numpy.__version__}")' > .venv/constraints.txt
.venv/bin/python -m pip install -q --disable-pip-version-check -c .venv/constraints.txt -r requirements-dev.txt
.venv/bin/python -c 'import numpy, onnxruntime, rasterio, qgis.core; print("environment ready: onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__)'
