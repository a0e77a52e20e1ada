"""``python -m fmlearn.cli``: the ``fmlearn`` command."""
from . import main

if __name__ == "__main__":
    main()
