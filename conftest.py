"""Doctest collection under src/: fmlearn.neural's modules need PyTorch (the neural extra),
which ``make test`` installs; without it they are left out rather than failing to import."""
import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch") else ["src/fmlearn/neural/*.py"]
