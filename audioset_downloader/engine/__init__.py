"""What drives a run: one CSV planned and run clip by clip over a bounded pool (or Dask), with progress.

``worker`` takes one clip through fetch and hands the result to the ledger; ``runner``
orchestrates a CSV; ``pool`` and ``dask_engine`` are the two ways to spread the work.
"""
