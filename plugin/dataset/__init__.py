"""Datasets over the Major TOM grid: the cells layer, per-cell jobs, Dask runs, STAC catalogs."""
