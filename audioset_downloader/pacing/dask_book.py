"""ENGINE = "dask": the run's pacing book, kept on the Dask scheduler.

Every Dask worker takes its turns from one PacingBook (pacing/book.py), so a cluster paces
each identity as one local process would. The book lives in a scheduler plugin, Dask's
own way to keep state on the scheduler (docs.dask.org, "Plugins"), and is reached with
``Client.run_on_scheduler``: about a millisecond a call, one call per clip attempt and
one per answer. Unlike an actor, which lives on one worker, it survives the loss of any
worker. Imported only when Dask is used: it needs dask.distributed. The scheduler must
be able to import this package, as the workers must.
"""

from __future__ import annotations

from typing import Any

from distributed import SchedulerPlugin, get_client

from audioset_downloader.inputs.settings import Settings
from audioset_downloader.pacing.book import Cooling, IdentityStats, PacingBook, Turn
from audioset_downloader.pacing.learned import Learned, book_arguments, load_learned, pace_for

PLUGIN_NAME = "audioset-downloader-pacing"


class PacingPlugin(SchedulerPlugin):
    name = PLUGIN_NAME

    def __init__(self, arguments: tuple, machines: Settings | None = None,
                 learned: dict[str, Learned] | None = None) -> None:
        self.arguments = arguments  # the book is built on the scheduler: its lock does not travel
        self.machines = machines  # PER_MACHINE_IDENTITY: the settings each machine's own pace is made by
        self.learned = learned or {}  # what earlier runs learnt, read on the driver
        self.book: PacingBook | None = None

    async def start(self, scheduler: Any) -> None:
        self.book = PacingBook(*self.arguments)
        if self.machines is not None:
            settings, learned = self.machines, self.learned
            self.book.add_machines(lambda address: pace_for(settings, learned.get(address)))


def _call(method: str, *args: Any, dask_scheduler: Any) -> Any:
    """Runs on the scheduler, in its event loop: the book's own lock is never contended there."""
    return getattr(dask_scheduler.plugins[PLUGIN_NAME].book, method)(*args)


class SchedulerBook:
    """A picklable handle on the book on the scheduler, usable from the driver and from any task."""

    def _call(self, method: str, *args: Any) -> Any:
        return get_client().run_on_scheduler(_call, method, *args)

    def take(self, machine: str | None = None) -> Turn:
        return self._call("take", machine)

    def confirm(self, index: int, blocks: int) -> bool:
        return self._call("confirm", index, blocks)

    def limited(self, index: int, bot_check: bool = False) -> Cooling | None:
        return self._call("limited", index, bot_check)

    def answered(self, index: int) -> None:
        self._call("answered", index)

    def missed(self, index: int) -> None:
        self._call("missed", index)

    def stats(self) -> list[IdentityStats]:
        return self._call("stats")

    def per_minute(self) -> float | None:
        return self._call("per_minute")


def install_book(client: Any, settings: Settings) -> SchedulerBook:
    """A fresh book for this run on the scheduler (a rerun's replaces the last), learnt paces read here."""
    machines = settings if settings.machine_identities else None
    client.register_plugin(PacingPlugin(book_arguments(settings), machines, load_learned(settings.output_dir)))
    return SchedulerBook()
