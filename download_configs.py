"""Settings for AudioDownloader.py: plain constants, edit them to taste.

Values must be literals (numbers, strings, lists, True/False/None): this file is
read, not executed. Relative paths start at the folder you run the command from.
Any constant can be overridden for one run by a flag (python AudioDownloader.py --help).
"""

# The segment CSVs to download, Google's files as published (comment lines are fine).
CSV_FILE_NAMES = ["data/eval_segments.csv"]

# The video page (or, with BACKEND = "direct", the media file) of a YTID.
YTB_URL_FORMAT = "https://www.youtube.com/watch?v={YTID}"

# Clips attempted per CSV: TIMER = 3 attempts 4; 0 or less attempts them all.
# Clips already downloaded are skipped and do not count.
TIMER = 9

# True: the highest-bitrate audio stream; False: AAC at up to 160 kb/s (YouTube's usual 128k).
DOWN_HIGHEST_QUALITY = False

# True: delete each CSV's earlier clips, manifests and log before downloading.
REMOVE_EXIST_DOWNLOADS = False

# Where clips (OUTPUT_DIR/<csv name>/<YTID>.<format>) and manifests go: a folder, or object storage
# ("s3://bucket/prefix", "gs://bucket/prefix"), which one run at a time holds (README.md: On a cluster).
OUTPUT_DIR = "downloads"

# Other runs' OUTPUT_DIRs (read only): a window already downloaded there (or under OUTPUT_DIR for
# another list) is taken from disk, hard-linked, instead of fetched again, e.g. ["/data/audioset"].
REUSE_FROM = []

# Public copies of the audio, taken before YouTube (see Mirrors in README.md): Hub repos
# ("hf://datasets/agkphysics/AudioSet"), buckets ("s3://..."), folders, or dicts
# {"url": ..., "layout": "parquet" | "webdataset" | "files", "revision": ...}. [] : YouTube only.
# Needs: pip install -e ".[mirrors]". Each copy is a third party's, under its own terms.
MIRRORS = []
# Windows of each mirror also fetched from YouTube to measure its copies against (0: no audit).
MIRROR_AUDIT = 3
# Threads reading and converting mirrors' copies, beside WORKERS (which wait for YouTube's pace).
MIRROR_WORKERS = 8

# A window its list gives no end for (AudioCaps, VGGSound, AudioSet strong labels) lasts this many
# seconds from its start; a video that ends sooner gives a shorter clip.
CLIP_SECONDS = 10

# For a list of no known shape (a CSV or TSV with a header): which columns hold the YTID and the
# times, e.g. {"ytid": "video_id", "start": "t0", "end": None}. None: only the known shapes.
COLUMNS = None

# "files": one file per clip. "webdataset": tar shards OUTPUT_DIR/<csv name>/<csv name>-000000.tar, ...
# of CLIPS_PER_TAR clips, each clip with its .json, instead of millions of small files (see README.md).
# "parquet": files <csv name>-000000.parquet, ... of CLIPS_PER_FILE clips, a row each, as the Hub holds
# audio sets (pip install -e ".[parquet]").
OUTPUT_LAYOUT = "files"

# With OUTPUT_LAYOUT = "webdataset": clips per shard (1000 ten-second wavs are about 1.7 GB).
CLIPS_PER_TAR = 1000

# With OUTPUT_LAYOUT = "parquet": clips per file; None: about 256 MB of clips in the run's format.
CLIPS_PER_FILE = None

# What turns a YTID into media, tried first: "pytube" (the original's), "yt-dlp", "pytubefix"
# (pip install -e ".[pytubefix]"), or "direct" (YTB_URL_FORMAT is the media URL itself).
BACKEND = "pytube"

# Tried in turn when BACKEND fails for reasons of its own (pytube does against today's YouTube);
# one not installed is left out. [] turns failover off. Not used with "direct".
FALLBACK_BACKENDS = ["yt-dlp", "pytubefix"]

# Audio format of the clips: "wav" (16-bit PCM), "flac", "opus" or "m4a" (AAC sources copied as they are).
AUDIO_FORMAT = "wav"

# Resample to this many Hz (e.g. 16000); None keeps the source's rate.
SAMPLE_RATE = None

# Mix to this many channels (1 = mono); None keeps the source's.
CHANNELS = None

# True: write .mp4 clips with the picture and AAC audio (AUDIO_FORMAT is then not used).
VIDEO = False

# Each clip's level and silence are measured as it is cut (peak_dbfs, rms_dbfs, silent_share, silent).
# "keep": a silent clip (nothing above -60 dBFS: YouTube mutes claimed audio) is written and flagged;
# "drop": it is not kept, and failed.csv records it as "silent" (a rerun skips it unless RETRY_FAILED).
SILENT_CLIPS = "keep"

# Only segments carrying one of these classes (names, any case, or MIDs); [] keeps all.
# python AudioDownloader.py --list-labels TEXT finds names.
LABELS = []

# True: a class in LABELS or EXCLUDE_LABELS also covers every class under it ("Animal" covers "Dog").
INCLUDE_CHILD_LABELS = False

# Drop segments carrying any of these classes.
EXCLUDE_LABELS = []

# AudioSet's ontology.json, for label names and filters; None: data/ontology.json.
ONTOLOGY_FILE = None

# Clips fetched at the same time per CSV.
WORKERS = 8

# Give up on one clip after this many seconds (a stalled connection or ffmpeg).
CLIP_TIMEOUT = 120

# --- When things go wrong (see README.md) ---

# Retries within a run after passing trouble (network, timeout, server error).
RETRIES = 3

# Seconds before the first retry, doubling with each further one (also the first cooldown of a
# rate-limited identity).
RETRY_BACKOFF = 2

# True: a rerun also retries clips that failed for good (video unavailable, private, ...).
RETRY_FAILED = False

# Stop after this many minutes with every identity rate-limited (YouTube's block lasts up to an hour).
MAX_BACKOFF_MINUTES = 90

# Clip attempts per minute per identity, shared by every worker, CSV and Dask worker of the run.
# "auto": learn each identity's limit (and keep it in OUTPUT_DIR/identities.json); None: no cap.
REQUESTS_PER_MINUTE = "auto"

# A Netscape cookies.txt exported from a browser signed in to YouTube (yt-dlp and media requests); None: none.
COOKIES_FILE = None

# A proxy for every request: "http://proxy.lab:3128", or "socks5://user:password@host:1080"; None: direct.
PROXY = None

# Several identities (addresses, accounts) to spread the clips over, each paced on its own, e.g.
# [{"name": "lab", "proxy": "http://proxy.lab:3128"}, {"name": "me", "cookies_file": "cookies.txt"}].
# Keys: name, proxy (http:// or socks5://), cookies_file. []: one identity made of PROXY and COOKIES_FILE.
IDENTITIES = []

# --- Backends in detail (see README.md, Backends) ---

# Where yt-dlp keeps YouTube's player code and solved challenges between runs;
# None: ~/.cache/audioset-downloader (or $XDG_CACHE_HOME/audioset-downloader).
CACHE_DIR = None

# More yt-dlp options, merged into ours, e.g. {"extractor_args": {"youtube": {"player_client": ["tv"]}}}.
YTDLP_OPTIONS = {}

# The YouTube client pytubefix poses as; "VISION_OS" needs no PO token and no player code.
PYTUBEFIX_CLIENT = "VISION_OS"

# --- Running on many machines (see README.md) ---

# "local": one process per CSV on this machine; "dask": shards of each CSV run on a Dask cluster
# (pip install -e ".[dask]").
ENGINE = "local"

# With ENGINE = "dask": a running scheduler ("tcp://host:8786"), or "local" for a cluster on this machine.
DASK_SCHEDULER = "local"

# With DASK_SCHEDULER = "local": how many worker processes to start.
DASK_WORKERS = 2

# With ENGINE = "dask": True makes each worker machine, known by the address its Dask worker listens
# on, an identity of its own (paced apart, beside IDENTITIES' proxies). False: behind one NAT every
# machine is one address, so they share the identities above.
PER_MACHINE_IDENTITY = False

# With ENGINE = "dask": rows per task.
SHARD_SIZE = 1000

# Only the videos of shard K of N, e.g. "0/3" on the first of three machines; None: all (or use --shard K/N).
SHARD = None
