"""Opening a remote file system by its URL's scheme (fsspec), and keeping its credentials to this machine.

OUTPUT_DIR and REUSE_FROM on object storage (outputs/storage.py) and the mirrors a window is read
from (fetch/mirrors/) open their file systems here: one message for a library that is not
installed, one rule for which options are secrets.
"""

from __future__ import annotations

from typing import Any

from audioset_downloader.errors import ConfigError

# The package each scheme needs, and the extra that brings it.
NEEDS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}

# STORAGE_OPTIONS that are credentials: they never leave the driver (a pickled Dask task travels over plain TCP);
# a worker takes its credentials from its own environment.
SECRET_OPTIONS = frozenset({"key", "secret", "token", "password", "session_token", "access_key", "secret_key",
                            "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "credentials"})


def without_secrets(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` less every credential, at any depth (client_kwargs may hold aws_secret_access_key)."""
    return {key: without_secrets(value) if isinstance(value, dict) else value
            for key, value in options.items() if key.lower() not in SECRET_OPTIONS}


def open_filesystem(named: str, scheme: str, options: dict[str, Any]) -> Any:
    """fsspec's filesystem for ``scheme``, or one line saying which package to install. ``named``: the setting
    and its URL, as messages say them."""
    if scheme not in NEEDS:  # settings refuse these first; a Store made by hand is held to the same
        raise ConfigError(f"{named}: a {scheme}:// URL is no store this tool writes to; use s3://bucket/prefix or "
                          "gs://bucket/prefix, or a local folder")
    package, extra = NEEDS[scheme]
    try:
        import fsspec  # comes with s3fs and gcsfs, not with the base install

        # A client of its own: fsspec's shared instance would keep the credentials of the first one made.
        return fsspec.filesystem(scheme, skip_instance_cache=True, **options)
    except ImportError:
        raise ConfigError(f"{named}: needs {package}, which is not installed; install it with: "
                          f'pip install -e ".[{extra}]"') from None
    except ValueError as exc:
        raise ConfigError(f"{named}: {exc}; use a local folder, s3://bucket/prefix or gs://bucket/prefix") \
            from None
    except TypeError as exc:  # an option the library does not take
        raise ConfigError(f"STORAGE_OPTIONS: {first_line(exc)}; give only options {scheme}'s library takes") \
            from None


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
