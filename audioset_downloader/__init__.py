"""Download AudioSet's YouTube windows as audio clips, with their labels.

The stages, in the order data flows through them, each a subpackage:
``inputs`` (settings, segment lists, labels) -> ``fetch`` (resolve a stream, cut the window)
-> ``outputs`` (record the clip, manifests, shards, reports), paced by ``pacing`` and driven by
``engine``. At the top: ``cli`` and ``doctor`` (the command line), and the leaves every stage
shares: ``errors``, ``atomic`` (files written whole) and ``redact`` (no password in a message).
Imports run one way, from the command line down to inputs.
"""

__version__ = "0.1.0"
