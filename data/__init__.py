"""Catalog data layer: raw-schema loader and cleaning, typed product records, the demo catalog generator.

Typical use::

    from data.catalog import load_catalog
    catalog = load_catalog("data/demo_catalog.csv")
    catalog.frame        # cleaned pandas DataFrame, one row per raw row (duplicates kept)
    catalog.products     # list[ProductRecord], one per product_id (reviews merged)
"""
