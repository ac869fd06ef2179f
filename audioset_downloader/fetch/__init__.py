"""How one clip is fetched: a backend resolves a segment to a media URL, ffmpeg cuts the window from it.

Backends sit behind ``backends.base.Backend`` (one module each); ``failover`` chains them;
``cutter`` runs ffmpeg; ``socks`` relays HTTP through SOCKS5 proxies; ``reachability`` tells a
dead network from clips with network trouble; ``probe`` reads a written clip's stream.
"""
