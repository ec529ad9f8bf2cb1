# Soket's `select`: select.select and select.poll over the page's sockets, so that `selectors`,
# `socketserver` and `http.server` work single-threaded. Waiting happens in the network worker, which
# answers when a socket is ready or the timeout passes. File descriptors 0-2 are the console: stdin is
# readable once the learner typed a line (or ended the input); stdout and stderr are always writable.

import _soketnet as _net
import _soket_stdio as _stdio
import time as _time

error = OSError

POLLIN = 0x001
POLLPRI = 0x002
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLNVAL = 0x020
POLLRDNORM = 0x040
POLLRDBAND = 0x080
POLLWRNORM = 0x100
POLLWRBAND = 0x200
POLLMSG = 0x400
POLLRDHUP = 0x2000
PIPE_BUF = 4096


def _fd(obj):
    if isinstance(obj, int):
        fd = obj
    else:
        try:
            fileno = obj.fileno
        except AttributeError:
            raise TypeError('argument must be an int, or have a fileno() method.') from None
        fd = fileno()
        if not isinstance(fd, int):
            raise TypeError('fileno() returned a non-integer')
    if fd < 0:
        raise ValueError('file descriptor cannot be a negative integer (%d)' % fd)
    return fd


# How often a select() that waits on the console as well as on sockets looks at the console: the network
# worker, which does the waiting, does not see the console.
_CONSOLE_POLL = 0.05


def _wait(read, write, error, timeout):
    """Waits on socket fds; the console's fds are answered here."""
    sockets = ([fd for fd in read if fd > 2], [fd for fd in write if fd > 2],
               [fd for fd in error if fd > 2])
    console_out = [fd for fd in write if fd in (1, 2)]
    wants_stdin = 0 in read
    deadline = None if timeout is None else _time.monotonic() + timeout
    while True:
        stdin = [0] if wants_stdin and _stdio.ready() else []
        slice_ = timeout
        if stdin or console_out:
            slice_ = 0.0
        elif wants_stdin:
            left = None if deadline is None else max(0.0, deadline - _time.monotonic())
            slice_ = _CONSOLE_POLL if left is None else min(_CONSOLE_POLL, left)
        r, w, x = _net.call('select', sockets[0], sockets[1], sockets[2], slice_)
        if r or w or x or stdin or console_out or not wants_stdin:
            return r + stdin, w + console_out, x
        if deadline is not None and _time.monotonic() >= deadline:
            return [], [], []


def select(rlist, wlist, xlist, timeout=None):
    if timeout is not None:
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise TypeError('timeout must be a float or None') from None
        if timeout < 0:
            raise ValueError('timeout must be non-negative')
    lists = [list(rlist), list(wlist), list(xlist)]
    fds = [[_fd(obj) for obj in objs] for objs in lists]
    ready = _wait(fds[0], fds[1], fds[2], timeout)
    return tuple([obj for obj, fd in zip(objs, fdlist) if fd in set(r)]
                 for objs, fdlist, r in zip(lists, fds, ready))


class poll:
    def __init__(self):
        self._fds = {}

    def register(self, fd, eventmask=POLLIN | POLLPRI | POLLOUT):
        self._fds[_fd(fd)] = eventmask

    def modify(self, fd, eventmask):
        fd = _fd(fd)
        if fd not in self._fds:
            raise FileNotFoundError(2, 'No such file or directory')
        self._fds[fd] = eventmask

    def unregister(self, fd):
        del self._fds[_fd(fd)]

    def poll(self, timeout=None):
        if timeout is not None:
            timeout = float(timeout)
            timeout = None if timeout < 0 else timeout / 1000.0
        read = [fd for fd, mask in self._fds.items() if mask & (POLLIN | POLLPRI)]
        write = [fd for fd, mask in self._fds.items() if mask & POLLOUT]
        r, w, x = _wait(read, write, list(self._fds), timeout)
        events = {}
        for fd in r:
            events[fd] = events.get(fd, 0) | POLLIN
        for fd in w:
            events[fd] = events.get(fd, 0) | POLLOUT
        for fd in x:
            events[fd] = events.get(fd, 0) | POLLERR
        return list(events.items())
