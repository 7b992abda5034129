"""``python -m shadho``: the same as the ``shadho`` command."""
from shadho.cli import entry_point

if __name__ == "__main__":
    entry_point()
