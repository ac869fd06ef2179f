"""Download the AudioSet segments listed in download_configs.py.

Usage: python AudioDownloader.py [--config PATH] [flags]   (--help lists them)
"""

import sys
from pathlib import Path

from audioset_downloader.cli import main

if __name__ == "__main__":
    sys.exit(main(default_config=Path(__file__).with_name("download_configs.py")))
