"""The ``tracker`` command line (also ``python -m tracker``).

:func:`tracker.cli.main.main` builds a fresh :class:`oslo_config.cfg.ConfigOpts`
for each call and dispatches to the handler of the chosen sub-command; each
command group lives in its own module (:mod:`tracker.cli.status`,
:mod:`tracker.cli.db`, :mod:`tracker.cli.transfer`, :mod:`tracker.cli.demo`).
"""
