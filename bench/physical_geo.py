"""COP-GEN geo side on a real Major TOM tile: time to read a 12-band S2 L2A tile onto its model
lattice (three groups at 10, 20, 60 m) and to write the three groups as COGs plus their VRT.

    .venv/bin/python bench/physical_geo.py [--repeat 5] [TILE.tif]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.geo.lattice import ModelLattice  # noqa: E402
from plugin.geo.physical_conditions import read_sensor  # noqa: E402
from plugin.geo.physical_outputs import output_name, write_physical, write_sensor_vrt  # noqa: E402

TILE = REPO.parent / "shared" / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tile", nargs="?", default=str(TILE))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lattice = ModelLattice.from_raster(args.tile)
    reads, writes, vrts = [], [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        layers = read_sensor(args.tile, "s2l2a", lattice)
        reads.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            paths = {key: write_physical(Path(out) / output_name("run", key, 0), lattice, key, values, valid)
                     for key, (values, valid) in layers.items()}
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            write_sensor_vrt(paths, "s2l2a", Path(out) / "run_S2L2A_s0.vrt")
            vrts.append(time.perf_counter() - start)
    rows, cols = lattice.units
    print(f"tile {Path(args.tile).name}: lattice {rows} x {cols} units; median of {args.repeat}:")
    print(f"  read_sensor s2l2a (3 groups)  {sorted(reads)[len(reads) // 2] * 1000:7.1f} ms")
    print(f"  write 3 COGs                  {sorted(writes)[len(writes) // 2] * 1000:7.1f} ms")
    print(f"  write the 12-band VRT         {sorted(vrts)[len(vrts) // 2] * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
