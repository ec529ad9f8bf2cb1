# Soket's `_socket`: the module CPython's `Lib/socket.py` builds on, for a program in the browser.
#
# Every socket call goes to the page's network worker through `_soketnet.call(name, *args)` (native: it
# encodes the call, blocks in Atomics.wait until the reply, and returns its value or raises what CPython
# would); this file checks the arguments and shapes the values as CPython on Linux does. Constants are
# Linux's.

import _soketnet as _net
import errno as _errno

AF_UNSPEC = 0
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_NONBLOCK = 0o4000
SOCK_CLOEXEC = 0o2000000
SOL_SOCKET = 1
SOL_IP = 0
SOL_TCP = 6
SOL_UDP = 17
SO_DEBUG = 1
SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_DONTROUTE = 5
SO_BROADCAST = 6
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_OOBINLINE = 10
SO_LINGER = 13
SO_REUSEPORT = 15
SO_RCVLOWAT = 18
SO_SNDLOWAT = 19
SO_RCVTIMEO = 20
SO_SNDTIMEO = 21
SO_ACCEPTCONN = 30
IPPROTO_IP = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPV6_V6ONLY = 26
IP_TTL = 2
IP_MULTICAST_TTL = 33
IP_MULTICAST_LOOP = 34
IP_ADD_MEMBERSHIP = 35
TCP_NODELAY = 1
TCP_MAXSEG = 2
TCP_KEEPIDLE = 4
TCP_KEEPINTVL = 5
TCP_KEEPCNT = 6
SHUT_RD = 0
SHUT_WR = 1
SHUT_RDWR = 2
MSG_OOB = 1
MSG_PEEK = 2
MSG_DONTROUTE = 4
MSG_DONTWAIT = 64
MSG_WAITALL = 256
MSG_NOSIGNAL = 16384
AI_PASSIVE = 1
AI_CANONNAME = 2
AI_NUMERICHOST = 4
AI_V4MAPPED = 8
AI_ALL = 16
AI_ADDRCONFIG = 32
AI_NUMERICSERV = 1024
NI_NUMERICHOST = 1
NI_NUMERICSERV = 2
NI_NOFQDN = 4
NI_NAMEREQD = 8
NI_DGRAM = 16
NI_MAXHOST = 1025
NI_MAXSERV = 32
EAI_BADFLAGS = -1
EAI_NONAME = -2
EAI_AGAIN = -3
EAI_FAIL = -4
EAI_NODATA = -5
EAI_FAMILY = -6
EAI_SOCKTYPE = -7
EAI_SERVICE = -8
EAI_ADDRFAMILY = -9
EAI_MEMORY = -10
EAI_SYSTEM = -11
EAI_OVERFLOW = -12
INADDR_ANY = 0
INADDR_BROADCAST = 0xFFFFFFFF
INADDR_LOOPBACK = 0x7F000001
INADDR_NONE = 0xFFFFFFFF
SOMAXCONN = 4096
has_ipv6 = True

error = OSError
timeout = TimeoutError


# Raised by `_net.call` itself (a name that does not resolve), so defined there; the other errors it
# raises are the OSError subclasses CPython's OSError picks for their errno (ConnectionRefusedError, ...),
# and TimeoutError('timed out').
gaierror = _net.gaierror
herror = _net.herror


_default_timeout = None
_MAX_CHUNK = _net.MAX_CHUNK


def getdefaulttimeout():
    return _default_timeout


def _check_timeout(value):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError('Timeout value must be int, float or None') from None
    if value != value or value < 0.0:
        raise ValueError('Timeout value out of range')
    return value


def setdefaulttimeout(timeout):
    global _default_timeout
    _default_timeout = _check_timeout(timeout)


def _port(port, caller='getsockaddrarg'):
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(port).__name__)
    if not 0 <= port <= 65535:
        raise OverflowError('%s: port must be 0-65535.' % caller)
    return port


def _host(host):
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode('idna')
    if not isinstance(host, str):
        raise TypeError('str, bytes or bytearray expected, not %s' % type(host).__name__)
    if host == '<broadcast>':
        return '255.255.255.255'
    return host


class socket:
    """socket(family=AF_INET, type=SOCK_STREAM, proto=0) -> socket object"""

    # Like CPython's C type: no __dict__ and no __weakref__, which socket.py's subclass adds itself.
    __slots__ = ('_fd', '_family', '_type', '_proto', '_timeout', '_options', '_peer')

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if family == -1:
            family = AF_INET
        if type == -1:
            type = SOCK_STREAM
        if proto == -1:
            proto = 0
        kind = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)
        if family not in (AF_INET, AF_INET6):
            raise OSError(_errno.EAFNOSUPPORT, 'Address family not supported by protocol')
        if kind not in (SOCK_STREAM, SOCK_DGRAM):
            raise OSError(_errno.ESOCKTNOSUPPORT, 'Socket type not supported')
        if fileno is None:
            fileno = _net.call('socket', 'udp' if kind == SOCK_DGRAM else 'tcp')
        self._fd = fileno
        self._family = family
        self._type = kind
        self._proto = proto
        self._timeout = 0.0 if type & SOCK_NONBLOCK else _default_timeout
        self._options = {}
        self._peer = None  # UDP: the address connect() set, as getpeername() shows it

    family = property(lambda self: self._family, doc='the socket family')
    type = property(lambda self: self._type, doc='the socket type')
    proto = property(lambda self: self._proto, doc='the socket protocol')
    timeout = property(lambda self: self._timeout, doc='the socket timeout')

    def __repr__(self):
        return '<_socket.socket fd=%d, family=%d, type=%d, proto=%d>' % (
            self._fd, self._family, self._type, self._proto)

    def _live(self):
        if self._fd < 0:
            raise OSError(_errno.EBADF, 'Bad file descriptor')
        return self._fd

    def _address(self, address, caller):
        if self._family == AF_INET6:
            if not isinstance(address, tuple):
                raise TypeError('%s(): AF_INET6 address must be tuple, not %s'
                                % (caller, type(address).__name__))
            if not 2 <= len(address) <= 4:
                raise TypeError('AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])')
        elif not isinstance(address, tuple):
            raise TypeError('%s(): AF_INET address must be tuple, not %s'
                            % (caller, type(address).__name__))
        elif len(address) != 2:
            raise TypeError('AF_INET address must be a pair (host, port)')
        return _host(address[0]), _port(address[1], caller + '()')

    def _shown(self, address):
        host, port = address
        if self._family == AF_INET6:
            if ':' not in host:
                host = '::ffff:' + host if host not in ('0.0.0.0', '') else '::'
            return (host, port, 0, 0)
        return (host, port)

    def _wait(self, flags=0):
        # CPython waits out a socket's timeout before it tries the call, so MSG_DONTWAIT only makes a
        # blocking socket's call non-blocking.
        if flags & MSG_DONTWAIT and self._timeout is None:
            return 0.0
        return self._timeout

    def fileno(self):
        return self._fd

    def detach(self):
        fd, self._fd = self._fd, -1
        return fd

    def close(self):
        fd, self._fd = self._fd, -1
        if fd >= 0:
            _net.call('close', fd)

    def settimeout(self, value):
        self._timeout = _check_timeout(value)

    def gettimeout(self):
        return self._timeout

    def setblocking(self, flag):
        self._timeout = None if flag else 0.0

    def getblocking(self):
        return self._timeout != 0.0

    def bind(self, address):
        host, port = self._address(address, 'bind')
        _net.call('bind', self._live(), host, port)

    def listen(self, backlog=min(SOMAXCONN, 128)):
        _net.call('listen', self._live(), max(0, int(backlog)))

    def _accept(self):
        fd, host, port = _net.call('accept', self._live(), self._timeout)
        return fd, self._shown((host, port))

    def connect(self, address):
        host, port = self._address(address, 'connect')
        if self._type == SOCK_DGRAM:
            # Resolved here, so that getpeername() shows the address (the relay keeps the name).
            peer = self._shown((gethostbyname(host) if self._family == AF_INET else host, port))
            _net.call('connect', self._live(), host, port, self._timeout)
            self._peer = peer
            return
        _net.call('connect', self._live(), host, port, self._timeout)

    def connect_ex(self, address):
        try:
            self.connect(address)
        except TimeoutError:
            return _errno.EAGAIN
        except OSError as e:
            if e.errno is None:
                raise
            return e.errno
        return 0

    def send(self, data, flags=0):
        view = memoryview(data).cast('B')
        return _net.call('send', self._live(), bytes(view[:_MAX_CHUNK]), self._wait(flags))

    def sendall(self, data, flags=0):
        view = memoryview(data).cast('B')
        while len(view):
            sent = self.send(view, flags)
            view = view[sent:]

    def sendto(self, data, flags_or_address, address=None):
        if address is None:
            address = flags_or_address
        view = memoryview(data).cast('B')
        host, port = self._address(address, 'sendto')
        if self._type == SOCK_STREAM:
            return self.send(view)
        return _net.call('sendto', self._live(), bytes(view), host, port)

    def recv(self, bufsize, flags=0):
        if bufsize < 0:
            raise ValueError('negative buffersize in recv')
        size = min(bufsize, _MAX_CHUNK)
        return _net.call('recv', self._live(), size, bool(flags & MSG_PEEK), self._wait(flags))

    def recv_into(self, buffer, nbytes=0, flags=0):
        view = memoryview(buffer).cast('B')
        if nbytes < 0:
            raise ValueError('negative buffersize in recv_into')
        size = nbytes or len(view)
        if size > len(view):
            raise ValueError('buffer too small for requested bytes')
        data = self.recv(size, flags)
        view[:len(data)] = data
        return len(data)

    def recvfrom(self, bufsize, flags=0):
        if bufsize < 0:
            raise ValueError('negative buffersize in recvfrom')
        if self._type == SOCK_STREAM:
            # A stream has no sender per read: Linux gives no address, and CPython None.
            return self.recv(bufsize, flags), None
        size = min(bufsize, _MAX_CHUNK)
        data, host, port = _net.call('recvfrom', self._live(), size, bool(flags & MSG_PEEK),
                                 self._wait(flags))
        return data, (None if host is None else self._shown((host, port)))

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        view = memoryview(buffer).cast('B')
        data, address = self.recvfrom(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data), address

    def shutdown(self, how):
        _net.call('shutdown', self._live(), int(how))

    def getsockname(self):
        return self._shown(_net.call('sockname', self._live()))

    def getpeername(self):
        fd = self._live()
        if self._peer is not None:
            return self._peer
        return self._shown(_net.call('peername', fd))

    def setsockopt(self, level, optname, value, optlen=None):
        # Options are kept and read back; the relay's real sockets have their own settings (the virtual
        # host never holds a port in TIME_WAIT, so SO_REUSEADDR is always in effect).
        self._live()
        self._options[(level, optname)] = value

    def getsockopt(self, level, optname, buflen=0):
        fd = self._live()
        if (level, optname) == (SOL_SOCKET, SO_ERROR):
            return _net.call('take_error', fd)
        if (level, optname) == (SOL_SOCKET, SO_TYPE):
            return self._type
        value = self._options.get((level, optname), 0)
        if buflen:
            return value if isinstance(value, bytes) else value.to_bytes(4, 'little')
        return value

    def __del__(self):
        if getattr(self, '_fd', -1) >= 0:
            try:
                self.close()
            except BaseException:
                # CPython's socket closes its fd silently here, even while a KeyboardInterrupt unwinds.
                pass


SocketType = socket


def close(fd):
    _net.call('close', fd)


def dup(fd):
    raise OSError(_errno.EOPNOTSUPP,
                  'Operation not supported (sockets cannot be duplicated in the browser)')


def gethostname():
    return _net.call('hostname')


def _numeric(host):
    try:
        return inet_ntoa(inet_aton(host)) if '.' in host or host.isdigit() else None
    except OSError:
        return None


def _resolve(host):
    if host is None or host == '':
        return ['127.0.0.1']
    if ':' in host:
        return [inet_ntop(AF_INET6, inet_pton(AF_INET6, host))]
    numeric = _numeric(host)
    if numeric is not None:
        return [numeric]
    return _net.call('resolve', host)


def gethostbyname(hostname):
    for ip in _resolve(_host(hostname)):
        if ':' not in ip:
            return ip
    raise gaierror(EAI_NONAME, 'Name or service not known')


def gethostbyname_ex(hostname):
    name = _host(hostname)
    ips = [ip for ip in _resolve(name) if ':' not in ip]
    if not ips:
        raise gaierror(EAI_NONAME, 'Name or service not known')
    return name, [], ips


def gethostbyaddr(ip_address):
    name = gethostname()
    if ip_address in ('127.0.0.1', '::1', 'localhost', name):
        return name, ['localhost'], ['127.0.0.1']
    raise herror(1, 'Unknown host')  # h_errno HOST_NOT_FOUND, not an errno


_SERVICES = {
    'echo': 7, 'discard': 9, 'daytime': 13, 'qotd': 17, 'chargen': 19, 'ftp-data': 20, 'ftp': 21,
    'ssh': 22, 'telnet': 23, 'smtp': 25, 'domain': 53, 'gopher': 70, 'http': 80, 'www': 80, 'pop3': 110,
    'nntp': 119, 'ntp': 123, 'imap': 143, 'imap2': 143, 'https': 443, 'submission': 587, 'imaps': 993,
    'pop3s': 995,
}


def getservbyname(servicename, protocolname=None):
    try:
        return _SERVICES[servicename]
    except KeyError:
        raise OSError('service/proto not found') from None


def getservbyport(port, protocolname=None):
    port = _port(port)
    for name, number in _SERVICES.items():
        if number == port:
            return name
    raise OSError('port/proto not found')


def getprotobyname(protocolname):
    try:
        return {'ip': 0, 'icmp': 1, 'tcp': 6, 'udp': 17, 'ipv6': 41}[protocolname]
    except KeyError:
        raise OSError('protocol not found') from None


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if port is None:
        port = 0
    elif isinstance(port, (str, bytes)):
        port = port.decode() if isinstance(port, bytes) else port
        if port.isdigit():
            port = int(port)
        elif flags & AI_NUMERICSERV:
            raise gaierror(EAI_NONAME, 'Name or service not known')
        else:
            try:
                port = getservbyname(port)
            except OSError:
                raise gaierror(EAI_SERVICE, 'Servname not supported for ai_socktype') from None
    elif not isinstance(port, int):
        raise OSError('Int or String expected')
    if host is None:
        ips = ['0.0.0.0' if flags & AI_PASSIVE else '127.0.0.1']
    else:
        name = _host(host)
        if flags & AI_NUMERICHOST and _numeric(name) is None and ':' not in name:
            raise gaierror(EAI_NONAME, 'Name or service not known')
        if not name:
            raise gaierror(EAI_NONAME, 'Name or service not known')
        ips = _resolve(name)
    if family not in (AF_UNSPEC, AF_INET, AF_INET6):
        raise gaierror(EAI_FAMILY, 'ai_family not supported')
    if type:
        kinds = [type]
    else:
        # glibc lists the socket types that go with the protocol asked for (all three for none).
        kinds = {IPPROTO_TCP: [SOCK_STREAM], IPPROTO_UDP: [SOCK_DGRAM]}.get(
            proto, [SOCK_STREAM, SOCK_DGRAM, SOCK_RAW])
    result = []
    for ip in ips:
        fam = AF_INET6 if ':' in ip else AF_INET
        if family not in (AF_UNSPEC, fam):
            continue
        for kind in kinds:
            number = proto or {SOCK_STREAM: IPPROTO_TCP, SOCK_DGRAM: IPPROTO_UDP}.get(kind, 0)
            address = (ip, port, 0, 0) if fam == AF_INET6 else (ip, port)
            result.append((fam, kind, number, '', address))
    if not result:
        raise gaierror(EAI_ADDRFAMILY, 'Address family for hostname not supported')
    return result


def getnameinfo(sockaddr, flags):
    host, port = sockaddr[0], sockaddr[1]
    if not flags & NI_NUMERICHOST and host in ('127.0.0.1', '::1'):
        host = 'localhost'
    service = str(port)
    if not flags & NI_NUMERICSERV:
        try:
            service = getservbyport(port)
        except OSError:
            pass
    return host, service


def _short(x, name):
    if x < 0:
        raise OverflowError("%s: can't convert negative Python int to C 16-bit unsigned integer" % name)
    if x > 0xFFFF:
        raise OverflowError('%s: Python int too large to convert to C 16-bit unsigned integer' % name)
    return ((x & 0xFF) << 8) | ((x >> 8) & 0xFF)


def htons(x):
    return _short(x, 'htons')


def ntohs(x):
    return _short(x, 'ntohs')


def htonl(x):
    if x < 0:
        raise OverflowError("can't convert negative value to unsigned int")
    if x > 0xFFFFFFFF:
        raise OverflowError('int larger than 32 bits')
    return int.from_bytes((x & 0xFFFFFFFF).to_bytes(4, 'big'), 'little')


ntohl = htonl


def inet_aton(ip_string):
    # Every form glibc's inet_aton reads: a.b.c.d, a.b.c, a.b, a; decimal, octal (0...) or hex (0x...).
    def number(part):
        if part[:2].lower() == '0x':
            return int(part[2:] or '0', 16)
        if len(part) > 1 and part[0] == '0':
            return int(part, 8)
        return int(part)
    try:
        if ip_string[:1].isspace():
            raise ValueError
        parts = [number(p) for p in ip_string.split(None, 1)[0].split('.')]
        if not 1 <= len(parts) <= 4 or any(p < 0 for p in parts):
            raise ValueError
        limits = {1: [2**32], 2: [256, 2**24], 3: [256, 256, 2**16], 4: [256] * 4}[len(parts)]
        if any(p >= limit for p, limit in zip(parts, limits)):
            raise ValueError
        value = 0
        for p in parts[:-1]:
            value = value * 256 + p
        value = (value << (8 * (5 - len(parts)))) + parts[-1]
        return value.to_bytes(4, 'big')
    except (ValueError, AttributeError, IndexError):
        raise OSError('illegal IP address string passed to inet_aton') from None


def inet_ntoa(packed_ip):
    packed = bytes(packed_ip)
    if len(packed) != 4:
        raise OSError('packed IP wrong length for inet_ntoa')
    return '.'.join(str(b) for b in packed)


def inet_pton(address_family, ip_string):
    if address_family == AF_INET:
        parts = ip_string.split('.')
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 and len(p) <= 3 for p in parts):
            raise OSError('illegal IP address string passed to inet_pton')
        return bytes(int(p) for p in parts)
    if address_family == AF_INET6:
        import ipaddress
        try:
            return ipaddress.IPv6Address(ip_string).packed
        except ValueError:
            raise OSError('illegal IP address string passed to inet_pton') from None
    raise OSError(_errno.EAFNOSUPPORT, 'Address family not supported by protocol')


def inet_ntop(address_family, packed_ip):
    packed = bytes(packed_ip)
    if address_family == AF_INET:
        if len(packed) != 4:
            raise ValueError('invalid length of packed IP address string')
        return inet_ntoa(packed)
    if address_family == AF_INET6:
        if len(packed) != 16:
            raise ValueError('invalid length of packed IP address string')
        import ipaddress
        return str(ipaddress.IPv6Address(packed))
    raise ValueError('unknown address family %d' % address_family)
