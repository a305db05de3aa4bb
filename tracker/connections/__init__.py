"""Managed storage connections: iSCSI targets and NFS exports kept connected on a host.

* :mod:`tracker.connections.uri` -- the URIs that name them, parsed and normalised;
* :mod:`tracker.connections.manager` -- manage / unmanage / list, persisted per host;
* :mod:`tracker.connections.monitor` -- the monitor that reconnects them with backoff;
* :mod:`tracker.connections.connectors` -- connecting and disconnecting, per scheme.
"""
