"""A scan-file responder: LUNs appear on a testbed when code asks a SCSI host to rescan.

:class:`ScanResponder` replaces each SCSI host's ``scsi_host/hostN/scan``
attribute of a :class:`~tracker.testing.live.LiveTestbed` by a FIFO and
watches them from a background thread. When code writes ``- - -`` or
``C T L`` (each may be ``-``, "any") to one, the LUNs the test scheduled for
that host and matching that address are plugged through the live changes,
which announce them with the kernel's events.

Deadlock-proof by construction: the responder keeps each FIFO open for
reading *and* holds a writer of its own, both non-blocking, so

* a writer's ``open()`` never blocks (a reader exists), which matters in a
  process under umockdev's preload: it holds a global lock with signals
  blocked during every wrapped ``open()``;
* the responder's reads never see end-of-file when writers come and go, and
  it waits in ``poll()`` with a bounded timeout, woken by a pipe on stop.

A FIFO cannot tell write boundaries apart: what is read at once is split on
newlines, and each non-empty piece is one request (a kernel ``scan`` write
is one request; writes of less than ``PIPE_BUF`` bytes are atomic).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tracker.exceptions import TestbedError, TrackerError
from tracker.testing.live import LiveTestbed, MultipathChoice
from tracker.testing.specs import LunSpec
from tracker.testing.uevents import Uevent

__all__ = ["ScanRequest", "ScanResponder"]

_READ_SIZE = 4096


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """One request written to a host's ``scan`` file.

    :ivar host: the host number.
    :ivar channel: the channel, ``None`` for ``-`` (any).
    :ivar target: the target id, ``None`` for any.
    :ivar lun: the LUN, ``None`` for any.
    """

    host: int
    channel: int | None
    target: int | None
    lun: int | None

    def matches(self, spec: LunSpec) -> bool:
        """Tell whether the request covers a LUN.

        :raises: nothing.
        """
        hctl = spec.hctl
        return hctl.host == self.host and all(
            wanted is None or wanted == value
            for wanted, value in (
                (self.channel, hctl.channel),
                (self.target, hctl.target),
                (self.lun, hctl.lun),
            )
        )


def _parse(host: int, text: str) -> ScanRequest | None:
    fields = text.split()
    if len(fields) != 3:
        return None
    values: list[int | None] = []
    for field in fields:
        if field == "-":
            values.append(None)
        elif field.isascii() and field.isdigit():
            values.append(int(field))
        else:
            return None
    return ScanRequest(host, values[0], values[1], values[2])


@dataclass(slots=True)
class _Fifo:
    host: int
    path: Path
    reader: int
    writer: int


class ScanResponder:
    """Answers rescans of a live testbed's SCSI hosts with scheduled LUNs.

    Use as a context manager, or :meth:`start` then :meth:`stop`.

    :param live: the testbed (its hosts must exist before :meth:`start`).
    :param hosts: the host numbers to watch; every SCSI host when ``None``.
    :param poll_timeout: the longest the thread waits in one ``poll()``.
    :param delay: seconds between reading a request and plugging its LUNs (the
        kernel scans asynchronously: devices appear some time after the write).
    :param listener: called with the events of each plugged LUN, in order
        (e.g. to push them into an in-memory event source, for a process that
        has no monitor socket).
    :ivar requests: every valid request read, in order.
    :ivar rejected: the texts that were not ``C T L`` requests.
    :ivar events: the events of the LUNs plugged in answer, in order.
    """

    def __init__(
        self,
        live: LiveTestbed,
        hosts: Sequence[int] | None = None,
        *,
        poll_timeout: float = 0.2,
        delay: float = 0.0,
        listener: Callable[[Sequence[Uevent]], None] | None = None,
    ) -> None:
        self.live = live
        self._hosts = None if hosts is None else tuple(hosts)
        self.poll_timeout = poll_timeout
        self.delay = delay
        self.listener = listener
        self.requests: list[ScanRequest] = []
        self.rejected: list[str] = []
        self.events: list[Uevent] = []
        self._scheduled: list[tuple[LunSpec, MultipathChoice]] = []
        self._fifos: list[_Fifo] = []
        self._errors: list[TrackerError] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def schedule(self, host: int, *luns: LunSpec, multipath: MultipathChoice = None) -> None:
        """Make LUNs appear at the next rescan of ``host`` that covers them.

        :param multipath: how each LUN's disk joins multipath (see
            :data:`tracker.testing.live.MultipathChoice`).
        :raises tracker.exceptions.TestbedError: when a LUN is not on ``host``.
        """
        for spec in luns:
            if spec.hctl.host != host:
                raise TestbedError(what=f"LUN {spec.hctl}", reason=f"not on host{host}")
        with self._condition:
            self._scheduled.extend((spec, multipath) for spec in luns)

    @property
    def pending(self) -> tuple[LunSpec, ...]:
        """The LUNs scheduled and not yet plugged.

        :raises: nothing.
        """
        with self._condition:
            return tuple(spec for spec, _ in self._scheduled)

    def _scan_files(self) -> list[tuple[int, Path]]:
        found = []
        for link in sorted((self.live.sys_dir / "class" / "scsi_host").glob("host*")):
            number = link.name[4:]
            if not number.isdigit():
                continue
            if self._hosts is None or int(number) in self._hosts:
                found.append((int(number), link.resolve() / "scan"))
        missing = set(self._hosts or ()) - {host for host, _ in found}
        if missing:
            raise TestbedError(
                what="scan responder", reason=f"no host{min(missing)} in the testbed"
            )
        return found

    def start(self) -> None:
        """Replace the hosts' ``scan`` files by FIFOs and start answering.

        :raises tracker.exceptions.TestbedError: when a host to watch is
            missing, the responder already runs, or a FIFO cannot be made.
        """
        if self._thread is not None:
            raise TestbedError(what="scan responder", reason="already started")
        try:
            for host, path in self._scan_files():
                path.unlink(missing_ok=True)
                os.mkfifo(path, 0o644)
                reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                self._fifos.append(_Fifo(host, path, reader, writer))
            self._wake = os.pipe()
        except OSError as error:
            self._close()
            raise TestbedError(
                what="scan responder", reason=errno.errorcode.get(error.errno or 0, "OSError")
            ) from None
        self._thread = threading.Thread(target=self._run, name="scan-responder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop answering, join the thread, and put regular ``scan`` files back.

        Idempotent.

        :raises tracker.exceptions.TestbedError: when the thread does not end
            within ``timeout`` seconds.
        :raises tracker.exceptions.TrackerError: the first error a rescan
            answer met (a LUN the builder refused, a monitor unreachable).
        """
        thread, self._thread = self._thread, None
        if thread is not None and self._wake is not None:
            os.write(self._wake[1], b"x")
            thread.join(timeout)
            if thread.is_alive():
                raise TestbedError(what="scan responder", reason=f"still running after {timeout} s")
        self._close()
        if self._errors:
            error, self._errors = self._errors[0], []
            raise error

    def _close(self) -> None:
        for fifo in self._fifos:
            for fd in (fifo.reader, fifo.writer):
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(OSError):
                if stat.S_ISFIFO(fifo.path.lstat().st_mode):
                    fifo.path.unlink()
                    fifo.path.write_bytes(b"")
        self._fifos = []
        if self._wake is not None:
            for fd in self._wake:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake = None

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` requests (valid or not) have been answered.

        :returns: whether they were within ``timeout`` seconds.
        :raises: nothing.
        """
        with self._condition:
            return self._condition.wait_for(
                lambda: len(self.requests) + len(self.rejected) >= count, timeout
            )

    def _run(self) -> None:
        assert self._wake is not None
        poller = select.poll()
        by_fd = {fifo.reader: fifo for fifo in self._fifos}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake[0], select.POLLIN)
        while True:
            ready = poller.poll(int(self.poll_timeout * 1000))
            if any(fd == self._wake[0] for fd, _ in ready):
                return
            for fd, _mask in ready:
                fifo = by_fd.get(fd)
                if fifo is not None:
                    self._read(fifo)

    def _read(self, fifo: _Fifo) -> None:
        chunks = []
        while True:
            try:
                chunk = os.read(fifo.reader, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        text = b"".join(chunks).decode("ascii", "replace")
        for line in text.splitlines():
            if line.strip():
                self._answer(fifo.host, line.strip())

    def _answer(self, host: int, text: str) -> None:
        request = _parse(host, text)
        with self._condition:
            if request is None:
                self.rejected.append(text)
                self._condition.notify_all()
                return
            chosen = [(s, m) for s, m in self._scheduled if request.matches(s)]
            self._scheduled = [(s, m) for s, m in self._scheduled if not request.matches(s)]
        if chosen and self.delay > 0:
            time.sleep(self.delay)
        for spec, multipath in chosen:
            try:
                events = self.live.plug_lun(spec, multipath)
            except TrackerError as error:
                self._errors.append(error)
                continue
            with self._condition:
                self.events.extend(events)
            if self.listener is not None:
                try:
                    self.listener(events)
                except TrackerError as error:
                    self._errors.append(error)
        with self._condition:
            self.requests.append(request)
            self._condition.notify_all()
