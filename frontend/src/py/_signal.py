# Soket's `_signal`, under the standard `signal` module: a browser has no processes and sends no signals, so
# this keeps the handlers a program installs and reports them back, and raise_signal() runs them, so that
# `signal` and what imports it (`subprocess`, hence `imaplib`) work. Stop still reaches a running program
# as KeyboardInterrupt, as Ctrl-C's default handler gives; a program's own SIGINT handler is not called
# by Stop.

import sys as _sys

SIG_DFL = 0
SIG_IGN = 1
NSIG = 65

# Linux's numbers, as CPython on Linux has them.
SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM = 9, 10, 11, 12, 13, 14, 15
SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU = 16, 17, 18, 19, 20, 21, 22
SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO = 23, 24, 25, 26, 27, 28, 29
SIGPOLL, SIGPWR, SIGSYS, SIGRTMIN, SIGRTMAX = 29, 30, 31, 34, 64
SIGIOT = SIGABRT

_NAMES = {
    SIGHUP: 'Hangup', SIGINT: 'Interrupt', SIGQUIT: 'Quit', SIGILL: 'Illegal instruction',
    SIGTRAP: 'Trace/breakpoint trap', SIGABRT: 'Aborted', SIGBUS: 'Bus error',
    SIGFPE: 'Floating point exception', SIGKILL: 'Killed', SIGUSR1: 'User defined signal 1',
    SIGSEGV: 'Segmentation fault', SIGUSR2: 'User defined signal 2', SIGPIPE: 'Broken pipe',
    SIGALRM: 'Alarm clock', SIGTERM: 'Terminated', SIGSTKFLT: 'Stack fault',
    SIGCHLD: 'Child exited', SIGCONT: 'Continued', SIGSTOP: 'Stopped (signal)',
    SIGTSTP: 'Stopped', SIGTTIN: 'Stopped (tty input)', SIGTTOU: 'Stopped (tty output)',
    SIGURG: 'Urgent I/O condition', SIGXCPU: 'CPU time limit exceeded',
    SIGXFSZ: 'File size limit exceeded', SIGVTALRM: 'Virtual timer expired',
    SIGPROF: 'Profiling timer expired', SIGWINCH: 'Window changed', SIGIO: 'I/O possible',
    SIGPWR: 'Power failure', SIGSYS: 'Bad system call',
}
# Signals whose default action is to do nothing; every other one ends the process.
_IGNORED_BY_DEFAULT = {SIGCHLD, SIGCONT, SIGURG, SIGWINCH}


def default_int_handler(signalnum, frame, /):
    raise KeyboardInterrupt


_handlers = {SIGINT: default_int_handler, SIGPIPE: SIG_IGN, SIGXFSZ: SIG_IGN}


def _check(signalnum):
    if not isinstance(signalnum, int):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(signalnum).__name__)
    if not 1 <= signalnum < NSIG:
        raise ValueError('signal number out of range')


def signal(signalnum, handler, /):
    _check(signalnum)
    if handler not in (SIG_DFL, SIG_IGN) and not callable(handler):
        raise TypeError('signal handler must be signal.SIG_IGN, signal.SIG_DFL, or a callable object')
    if signalnum in (SIGKILL, SIGSTOP):
        raise OSError(22, 'Invalid argument')
    previous = _handlers.get(signalnum, SIG_DFL)
    _handlers[signalnum] = handler
    return previous


def getsignal(signalnum, /):
    _check(signalnum)
    return _handlers.get(signalnum, SIG_DFL)


def raise_signal(signalnum, /):
    _check(signalnum)
    handler = _handlers.get(signalnum, SIG_DFL)
    if callable(handler):
        handler(signalnum, _sys._getframe(1))
    elif handler == SIG_DFL and signalnum not in _IGNORED_BY_DEFAULT:
        # The process would end here, with the status a shell shows for a signal.
        raise SystemExit(128 + signalnum)


def strsignal(signalnum, /):
    _check(signalnum)
    if SIGRTMIN <= signalnum <= SIGRTMAX:
        return 'Real-time signal %d' % (signalnum - SIGRTMIN)
    return _NAMES.get(signalnum)


def valid_signals():
    return set(range(1, NSIG)) - {32, 33}


def set_wakeup_fd(fd, /, *, warn_on_full_buffer=True):
    return -1


def siginterrupt(signalnum, flag, /):
    _check(signalnum)
