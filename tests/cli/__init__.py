"""Tests of the ``tracker`` command line, the demo and the progress line."""
