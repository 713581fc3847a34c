"""``python -m pipeline`` and the ``cleancorpus`` command."""

import gc

# main() pauses the collector while a command imports and sets up (see there); the CLI's own imports
# (pydantic, click, the config models: ~0.1 s) come first, so pause it before them too (~12 ms of their CPU).
gc.disable()

from pipeline import re_cache  # noqa: E402

re_cache.install()  # (regular expressions compiled by an earlier process: ~30 ms of a run)

from pipeline.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
