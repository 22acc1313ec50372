"""The progress report of ganinv.invert(progress=True): one line per 10% on stderr."""

import sys

_last_decile = {"value": -1}


def print_progress(step, total_steps, losses):
    """Prints the mean loss at every tenth of the run (and at its end)."""
    decile = 10 * step // max(1, total_steps)
    if step == 1:
        _last_decile["value"] = -1
    if decile == _last_decile["value"] and step != total_steps:
        return
    _last_decile["value"] = decile
    mean = sum(losses) / max(1, len(losses))
    print(f"ganinv.invert: step {step}/{total_steps}  mean loss {mean:.5g}", file=sys.stderr, flush=True)
