"""Adding tags to the executing run (``ct.tags.add``, SEMANTICS §9).

Example::

    @ct.task(id="process-order")
    def process_order(payload, ctx):
        ct.tags.add([f"order:{payload['id']}", f"customer:{payload['customer']}"])
        ...

    ct.runs.list(tag="customer:42")       # runs tagged with it, newest first

Tags follow the trigger-time rules (D-14): a string or a list of strings, blanks dropped,
duplicates removed, each 1-64 characters, at most 10 per run. ``add`` skips tags the run
already has; when the new ones would take the run past 10, none is added and an error is
logged (the call returns normally, as upstream). ``ctx.run.tags`` keeps the tags the attempt
started with; ``runs.retrieve`` shows the stored ones. Tags are not inherited by child runs.
"""

from __future__ import annotations

from ._engine import tags as _tags
from ._engine.engine import current
from ._engine.metadata import replaying
from ._engine.state import current_state
from .options import normalize_tags


def add(tag_or_tags: str | list[str] | tuple[str, ...]) -> None:
    """Add one tag or several to the executing run; outside a run it raises ``RuntimeError``.

    Example: ``ct.tags.add("priority:high")`` or ``ct.tags.add(["a", "b"])``.
    """
    tags = normalize_tags(tag_or_tags)  # types, lengths and the per-call limit raise here
    state = current_state()
    if state is None:
        raise RuntimeError(
            "Can't set tags outside of a run: tags.add can only be used from "
            "inside a task run (pass tags= when triggering instead)"
        )
    if not tags or replaying(state):
        return  # nothing to add, or added before the run parked (tags.add is idempotent)
    _tags.add(current(), state.run_id, tags)


__all__ = ["add"]
