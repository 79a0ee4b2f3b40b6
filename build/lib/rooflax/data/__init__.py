"""Where rows go: polars frames, parquet datasets, their integrity, export and progress."""
