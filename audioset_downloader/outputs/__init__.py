"""What goes out: where each output lives, the manifests, shards, summaries, reports and dataset cards.

``layout`` names the files, ``ledger`` records each clip's outcome (``shards`` packs the
webdataset layout), ``summary``/``provenance``/``report``/``card`` describe a run, and
``merge``/``verify`` work on finished outputs.
"""
