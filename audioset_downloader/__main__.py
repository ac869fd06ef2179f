import sys

from audioset_downloader.cli import main

if __name__ == "__main__":
    sys.exit(main())
