"""Pausing the cyclic garbage collector around bulk work that allocates long-lived acyclic objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while bulk work allocates an object per row, bar or event.

    Bars, ticks and events hold no reference cycles, so collections during a bulk load or a replay
    find nothing, yet they re-walk the growing heap again and again (a fifth of the decode time,
    about a tenth of a replay's). On exit what was allocated meanwhile is promoted straight to the
    oldest generation (`gc.freeze()` then `gc.unfreeze()`: two list splices) rather than scanned by
    the first young collection after re-enabling, which for a replay's ~300k kept objects is a
    40 ms pass that finds nothing. The next full collection still examines them, so nothing
    cyclic leaks. Skipped when the process has frozen objects of its own (unfreeze would release
    them too). The previous state is restored even if the work raises.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()
