"""``tracker paths|orphans|verify-detach|verify-attach``: volume paths and detach checks.

* ``paths VOLUME_ID [--host H]`` lists a tracked volume's paths on each host
  of its attached connections (links, SCSI devices, multipath map), read from
  the reconciled model;
* ``orphans [--host H]`` finds leftover paths and reused-LUN hazards on one
  host or on every host of the store;
* ``verify-detach VOLUME_ID [--host H]`` reports every path of the volume on
  the hosts it is not attached to;
* ``verify-attach VOLUME_ID --host H`` checks every expected path is there,
  healthy, and the volume's.

All are read-only (a missing store is an error, nothing is created) and take
``--json``. Exit statuses, for gate scripts: 0 nothing found, 3 findings
remain (leftovers, missing paths), 4 a hazard among them (a reused LUN, a map
or link to another LU), 1 an error (unknown volume, the store unreachable), 5
the host was never discovered, 2 bad arguments.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from tracker.cli import common

__all__ = ["EXIT_FINDINGS", "EXIT_HAZARD", "register"]

#: Some findings remain.
EXIT_FINDINGS = 3
#: A hazard is among them.
EXIT_HAZARD = 4


def _status(findings: Any) -> int:
    if any(f.severity == "hazard" for f in findings):
        return EXIT_HAZARD
    return EXIT_FINDINGS if findings else 0


def register(subparsers: Any) -> None:
    """Add the path commands.

    :returns: nothing.
    """
    paths = common.add_command(
        subparsers,
        "paths",
        run_paths,
        help="list a volume's paths on the hosts it is attached to",
    )
    paths.add_argument("volume_id", metavar="VOLUME_ID")
    paths.add_argument("--host", default=None, help="only this host")
    common.add_json(paths)
    orphans = common.add_command(
        subparsers,
        "orphans",
        run_orphans,
        help="find leftover paths and reused-LUN hazards (every host by default)",
    )
    orphans.add_argument("--host", default=None, help="only this host")
    common.add_json(orphans)
    detach = common.add_command(
        subparsers,
        "verify-detach",
        run_verify_detach,
        help="report the paths a volume left on the hosts it is not attached to",
    )
    detach.add_argument("volume_id", metavar="VOLUME_ID")
    detach.add_argument("--host", default=None, help="only this host")
    common.add_json(detach)
    attach = common.add_command(
        subparsers,
        "verify-attach",
        run_verify_attach,
        help="check that an attached volume has every expected path on a host",
    )
    attach.add_argument("volume_id", metavar="VOLUME_ID")
    attach.add_argument("--host", required=True, help="the host")
    common.add_json(attach)


def _print_findings(findings: Any) -> None:
    for f in findings:
        where = f.path or f.hctl or f.wwid or "-"
        since = f" since {f.since:%Y-%m-%d %H:%M:%S}" if f.since is not None else ""
        print(f"{f.severity.upper()} {f.kind} {f.host_name} {where}: {f.reason}{since}")


def run_paths(conf: cfg.ConfigOpts) -> int:
    """List a volume's paths.

    :returns: 0, or 3 when an attached connection has no path at all.
    :raises tracker.exceptions.TrackerError: an unknown volume, the store unusable.
    """
    from tracker.paths import service

    host = common.arg(conf, "host")
    volume_id = common.arg(conf, "volume_id")
    with common.opened_store(conf, create=False) as store:
        reports = service.volume_paths(store, volume_id, host)
    if common.arg(conf, "json"):
        common.print_json({"volume_id": volume_id, "hosts": [r.as_dict() for r in reports]})
    else:
        if not reports:
            print(f"volume {volume_id} has no attached connection")
        for report in reports:
            print(f"{report.host_name}: {len(report.paths)} paths")
            for path in report.paths:
                print(f"  {path}")
    return EXIT_FINDINGS if any(not r.paths for r in reports) else 0


def run_orphans(conf: cfg.ConfigOpts) -> int:
    """Find orphans.

    :returns: 0, 3 or 4 (see the module).
    :raises tracker.exceptions.TrackerError: the host unknown, the store unusable.
    """
    from tracker.paths import service

    with common.opened_store(conf, create=False) as store:
        report = service.find_orphans(store, common.arg(conf, "host"))
    if common.arg(conf, "json"):
        common.print_json(report.as_dict())
    else:
        _print_findings(report.findings)
        print(f"{len(report.findings)} findings on {len(report.hosts)} hosts")
    return _status(report.findings)


def run_verify_detach(conf: cfg.ConfigOpts) -> int:
    """Verify a detach.

    :returns: 0, 3 or 4 (see the module).
    :raises tracker.exceptions.TrackerError: an unknown volume or host, the store unusable.
    """
    from tracker.paths import service

    volume_id = common.arg(conf, "volume_id")
    with common.opened_store(conf, create=False) as store:
        report = service.verify_detach(store, volume_id, common.arg(conf, "host"))
    if common.arg(conf, "json"):
        common.print_json(report.as_dict())
    else:
        _print_findings(report.findings)
        attached = (
            f"; still attached on {', '.join(report.attached_on)}" if report.attached_on else ""
        )
        verdict = "clean" if report.clean else f"{len(report.findings)} findings"
        print(f"volume {volume_id}: {verdict} on {len(report.hosts)} hosts{attached}")
    return _status(report.findings)


def run_verify_attach(conf: cfg.ConfigOpts) -> int:
    """Verify an attach.

    :returns: 0, 3 or 4 (see the module).
    :raises tracker.exceptions.TrackerError: an unknown volume or host, the store unusable.
    """
    from tracker.paths import service

    volume_id = common.arg(conf, "volume_id")
    host = common.arg(conf, "host")
    with common.opened_store(conf, create=False) as store:
        report = service.verify_attach(store, volume_id, host)
    if common.arg(conf, "json"):
        common.print_json(report.as_dict())
    else:
        _print_findings(report.findings)
        verdict = "ok" if report.clean else f"{len(report.findings)} findings"
        print(
            f"volume {volume_id} on {host}: {verdict} ({len(report.paths)} paths, "
            f"{report.expected_paths} expected)"
        )
    return _status(report.findings)
