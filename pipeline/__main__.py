"""``python -m pipeline`` and the ``cleancorpus`` command."""

import gc

# main() pauses the collector while a command imports and sets up (see there); the CLI's own imports
# (click, orjson) come first, so pause it before them too.
gc.disable()

from pipeline.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
