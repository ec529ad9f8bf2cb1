//! Blocking, non-blocking and timed calls, as a Python program makes them through the network worker.

use bytes::Bytes;
use soket_netstack::{Call, Down, Executor, Kind, Reply, StreamId, Ticket, Up};

fn executor() -> Executor {
    let mut exec = Executor::new();
    let welcome = Down::Welcome {
        hostname: "learner-1".into(),
        public_host: "127.0.0.1".into(),
        window: 65536,
    };
    exec.stack.handle(welcome).expect("welcome");
    exec
}

fn ticket(call: u64) -> Ticket {
    Ticket { program: 1, call }
}

fn frames(exec: &mut Executor) -> Vec<Up> {
    exec.stack.take_frames().collect()
}

/// A connected TCP socket (stream 1), set up through calls.
fn connected(exec: &mut Executor) -> u32 {
    let Some(Reply::Fd(fd)) = exec.submit(ticket(1), Call::Socket { kind: Kind::Tcp }, 0.0) else {
        panic!("socket")
    };
    let connect = Call::Connect {
        fd,
        host: "localhost".into(),
        port: 80,
        timeout: None,
    };
    assert_eq!(
        exec.submit(ticket(2), connect, 0.0),
        None,
        "connect waits for the relay"
    );
    frames(exec);
    let up = Down::Connected {
        stream: StreamId(1),
        local: "127.0.0.1:1".parse().unwrap(),
        peer: "127.0.0.1:80".parse().unwrap(),
    };
    exec.stack.handle(up).expect("connected");
    assert_eq!(exec.poll(1.0), vec![(ticket(2), Reply::Done)]);
    fd
}

#[test]
fn a_blocking_recv_waits_for_data_and_a_timed_one_times_out() {
    let mut exec = executor();
    let fd = connected(&mut exec);
    let recv = |timeout| Call::Recv {
        fd,
        max: 1024,
        peek: false,
        timeout,
    };
    assert_eq!(exec.submit(ticket(3), recv(None), 10.0), None);
    assert_eq!(exec.poll(1e9), vec![], "no timeout: still waiting");
    exec.stack
        .handle(Down::Data {
            stream: StreamId(1),
            payload: Bytes::from_static(b"hi"),
        })
        .expect("data");
    assert_eq!(
        exec.poll(20.0),
        vec![(ticket(3), Reply::Data(Bytes::from_static(b"hi")))]
    );

    assert_eq!(exec.submit(ticket(4), recv(Some(0.5)), 100.0), None);
    assert_eq!(exec.next_deadline(), Some(600.0));
    assert_eq!(exec.poll(599.0), vec![]);
    assert_eq!(exec.poll(600.0), vec![(ticket(4), Reply::Timeout)]);

    let Some(Reply::Error { errno, .. }) = exec.submit(ticket(5), recv(Some(0.0)), 700.0) else {
        panic!("EAGAIN")
    };
    assert_eq!(errno, 11, "BlockingIOError");
}

#[test]
fn a_non_blocking_connect_is_in_progress_then_select_and_so_error_tell() {
    let mut exec = executor();
    let Some(Reply::Fd(fd)) = exec.submit(ticket(1), Call::Socket { kind: Kind::Tcp }, 0.0) else {
        panic!()
    };
    let connect = Call::Connect {
        fd,
        host: "localhost".into(),
        port: 9,
        timeout: Some(0.0),
    };
    let Some(Reply::Error { errno, .. }) = exec.submit(ticket(2), connect, 0.0) else {
        panic!("EINPROGRESS")
    };
    assert_eq!(errno, 115);
    let select = Call::Select {
        read: vec![],
        write: vec![fd],
        error: vec![],
        timeout: Some(5.0),
    };
    assert_eq!(exec.submit(ticket(3), select, 0.0), None);
    exec.stack
        .handle(Down::Failed {
            stream: StreamId(1),
            errno: 111,
            message: "Connection refused".into(),
        })
        .expect("f");
    assert_eq!(
        exec.poll(1.0),
        vec![(
            ticket(3),
            Reply::Ready {
                read: vec![],
                write: vec![fd],
                error: vec![]
            }
        )]
    );
    assert_eq!(
        exec.submit(ticket(4), Call::TakeError { fd }, 1.0),
        Some(Reply::Int(111))
    );
    assert_eq!(
        exec.submit(ticket(5), Call::TakeError { fd }, 1.0),
        Some(Reply::Int(0)),
        "cleared"
    );
}

#[test]
fn select_waits_for_the_first_ready_socket_or_its_timeout() {
    let mut exec = executor();
    let fd = connected(&mut exec);
    let Some(Reply::Fd(listener)) = exec.submit(ticket(3), Call::Socket { kind: Kind::Tcp }, 0.0)
    else {
        panic!()
    };
    let select = |timeout| Call::Select {
        read: vec![fd, listener],
        write: vec![],
        error: vec![],
        timeout,
    };
    assert_eq!(exec.submit(ticket(4), select(Some(1.0)), 0.0), None);
    assert_eq!(
        exec.poll(1000.0),
        vec![(
            ticket(4),
            Reply::Ready {
                read: vec![],
                write: vec![],
                error: vec![]
            }
        )]
    );
    assert_eq!(exec.submit(ticket(5), select(None), 0.0), None);
    exec.stack
        .handle(Down::Shutdown {
            stream: StreamId(1),
        })
        .expect("fin");
    assert_eq!(
        exec.poll(2000.0),
        vec![(
            ticket(5),
            Reply::Ready {
                read: vec![fd],
                write: vec![],
                error: vec![]
            }
        )]
    );
    let bad = Call::Select {
        read: vec![99],
        write: vec![],
        error: vec![],
        timeout: None,
    };
    assert!(
        matches!(
            exec.submit(ticket(6), bad, 0.0),
            Some(Reply::Error { errno: 9, .. })
        ),
        "EBADF"
    );
}

#[test]
fn bind_listen_and_resolve_wait_for_the_relay() {
    let mut exec = executor();
    let Some(Reply::Fd(fd)) = exec.submit(ticket(1), Call::Socket { kind: Kind::Tcp }, 0.0) else {
        panic!()
    };
    assert_eq!(
        exec.submit(
            ticket(2),
            Call::Bind {
                fd,
                host: String::new(),
                port: 80
            },
            0.0
        ),
        None
    );
    exec.stack
        .handle(Down::Failed {
            stream: StreamId(1),
            errno: 98,
            message: "Address already in use".into(),
        })
        .expect("f");
    assert_eq!(
        exec.poll(1.0),
        vec![(
            ticket(2),
            Reply::Error {
                errno: 98,
                message: "Address already in use".into()
            }
        )]
    );

    assert_eq!(
        exec.submit(
            ticket(3),
            Call::Resolve {
                host: "localhost".into()
            },
            0.0
        ),
        None
    );
    let request = match frames(&mut exec).last() {
        Some(Up::Resolve { stream, .. }) => *stream,
        other => panic!("expected Resolve, got {other:?}"),
    };
    exec.stack
        .handle(Down::Resolved {
            stream: request,
            addrs: vec!["127.0.0.1".parse().unwrap()],
        })
        .expect("r");
    assert_eq!(
        exec.poll(1.0),
        vec![(ticket(3), Reply::Addrs(vec!["127.0.0.1".parse().unwrap()]))]
    );
    assert_eq!(
        exec.submit(ticket(4), Call::Hostname, 0.0),
        Some(Reply::Text("learner-1".into()))
    );
}

#[test]
fn stopping_a_program_drops_its_waiting_calls_and_closes_its_sockets() {
    let mut exec = executor();
    let fd = connected(&mut exec);
    assert_eq!(
        exec.submit(
            ticket(3),
            Call::Recv {
                fd,
                max: 10,
                peek: false,
                timeout: None
            },
            0.0
        ),
        None
    );
    exec.stop_program(1);
    assert_eq!(
        frames(&mut exec),
        vec![Up::Close {
            stream: StreamId(1)
        }]
    );
    exec.stack
        .handle(Down::Data {
            stream: StreamId(1),
            payload: Bytes::from_static(b"late"),
        })
        .expect("ignored");
    assert_eq!(exec.poll(1.0), vec![]);
    assert_eq!(exec.next_deadline(), None);
}

#[test]
fn calls_and_replies_survive_their_encoding() {
    let calls = [
        Call::Socket { kind: Kind::Udp },
        Call::Send {
            fd: 3,
            data: Bytes::from_static(b"\x00\xffdata"),
            timeout: Some(1.5),
        },
        Call::Select {
            read: vec![3, 4],
            write: vec![],
            error: vec![5],
            timeout: None,
        },
        Call::Hostname,
    ];
    for call in calls {
        assert_eq!(Call::decode(&call.encode()).expect("decodes"), call);
    }
    let replies = [
        Reply::DataFrom(Bytes::from_static(b"x"), Some("[::1]:53".parse().unwrap())),
        Reply::Error {
            errno: -2,
            message: "Name or service not known".into(),
        },
        Reply::Timeout,
    ];
    for reply in replies {
        assert_eq!(Reply::decode(&reply.encode()).expect("decodes"), reply);
    }
    assert!(Call::decode(&[0xff, 0xff, 0xff]).is_err());
}

/// How many times the network worker's timer fires for calls that wait `until` ms for the relay: `settle`
/// arms it after every poll for the earliest deadline, at once if that is past; a browser runs a timeout
/// of 0 ms after at least `MIN_TIMER_MS` once timers nest.
fn timer_fires(exec: &mut Executor, until: f64) -> usize {
    const MIN_TIMER_MS: f64 = 4.0;
    let (mut now, mut fires) = (0.0, 0);
    while let Some(at) = exec.next_deadline() {
        now = at.max(now + MIN_TIMER_MS);
        if now >= until {
            break;
        }
        fires += 1;
        assert_eq!(exec.poll(now), vec![], "nothing answers before the relay");
    }
    fires
}

#[test]
fn bind_listen_and_resolve_arm_no_timer_while_they_wait_for_the_relay() {
    let mut exec = executor();
    let Some(Reply::Fd(fd)) = exec.submit(ticket(1), Call::Socket { kind: Kind::Tcp }, 0.0) else {
        panic!()
    };
    let bind = Call::Bind {
        fd,
        host: String::new(),
        port: 8080,
    };
    let resolve = Call::Resolve {
        host: "example.org".into(),
    };
    for (n, call) in [bind, resolve].into_iter().enumerate() {
        assert_eq!(exec.submit(ticket(2 + n as u64), call, 0.0), None);
    }
    assert_eq!(
        exec.next_deadline(),
        None,
        "they wait for the relay, not for a time"
    );
    assert_eq!(
        timer_fires(&mut exec, 100.0),
        0,
        "a 100 ms round trip wakes the worker 0 times"
    );
    frames(&mut exec);
    exec.stack
        .handle(Down::Bound {
            stream: StreamId(1),
            local: "0.0.0.0:8080".parse().unwrap(),
        })
        .expect("bound");
    assert_eq!(exec.poll(100.0), vec![(ticket(2), Reply::Done)]);
    let listen = Call::Listen { fd, backlog: 5 };
    assert_eq!(exec.submit(ticket(4), listen, 100.0), None);
    assert_eq!(
        exec.next_deadline(),
        None,
        "listen waits for the relay, not for a time"
    );
}

/// Arguments as a Python program passes them, for [`Call::from_args`].
enum Value {
    Int(i64),
    Text(&'static str),
    Data(&'static [u8]),
    Seconds(Option<f64>),
    Fds(Vec<u32>),
}

struct Values(std::vec::IntoIter<Value>);

impl soket_netstack::Args for Values {
    type Error = String;
    fn u16(&mut self) -> Result<u16, String> {
        self.u32()?.try_into().map_err(|_| "not a port".into())
    }
    fn u32(&mut self) -> Result<u32, String> {
        match self.0.next() {
            Some(Value::Int(n)) => n.try_into().map_err(|_| "out of range".into()),
            _ => Err("an int".into()),
        }
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(self.u32()? as i32)
    }
    fn bool(&mut self) -> Result<bool, String> {
        Ok(self.u32()? != 0)
    }
    fn string(&mut self) -> Result<String, String> {
        match self.0.next() {
            Some(Value::Text(text)) => Ok(text.into()),
            _ => Err("a str".into()),
        }
    }
    fn bytes(&mut self) -> Result<Bytes, String> {
        match self.0.next() {
            Some(Value::Data(data)) => Ok(Bytes::from_static(data)),
            _ => Err("bytes".into()),
        }
    }
    fn timeout(&mut self) -> Result<Option<f64>, String> {
        match self.0.next() {
            Some(Value::Seconds(t)) => Ok(t),
            _ => Err("a timeout".into()),
        }
    }
    fn fds(&mut self) -> Result<Vec<u32>, String> {
        match self.0.next() {
            Some(Value::Fds(fds)) => Ok(fds),
            _ => Err("a list".into()),
        }
    }
    fn invalid(&mut self, why: String) -> String {
        why
    }
}

fn call(name: &str, args: Vec<Value>) -> Result<Call, String> {
    Call::from_args(name, &mut Values(args.into_iter()))
}

#[test]
fn a_call_is_made_by_its_name_from_arguments_in_the_tables_order() {
    use Value::*;
    let sendto = call("sendto", vec![Int(3), Data(b"hi"), Text("lab"), Int(7)]);
    assert_eq!(
        sendto,
        Ok(Call::SendTo {
            fd: 3,
            data: Bytes::from_static(b"hi"),
            host: "lab".into(),
            port: 7
        })
    );
    assert_eq!(
        call("socket", vec![Text("udp")]),
        Ok(Call::Socket { kind: Kind::Udp })
    );
    assert_eq!(call("hostname", vec![]), Ok(Call::Hostname));
    let select = call(
        "select",
        vec![Fds(vec![3]), Fds(vec![]), Fds(vec![]), Seconds(None)],
    );
    assert_eq!(select.as_ref().map(Call::name), Ok("select"));
    assert_eq!(
        call("bind", vec![Int(3), Text(""), Int(70000)]),
        Err("not a port".into())
    );
    assert_eq!(
        call("socket", vec![Text("sctp")]),
        Err("no socket kind \"sctp\"".into())
    );
    assert_eq!(
        call("fork", vec![]),
        Err("no socket call named \"fork\"".into())
    );
    for name in Call::NAMES {
        assert!(
            !call(name, vec![]).is_err_and(|e| e.starts_with("no socket call")),
            "{name}"
        );
    }
}

#[test]
fn the_calls_that_wait_are_those_stop_interrupts() {
    let waits: Vec<&str> = [
        Call::Socket { kind: Kind::Tcp },
        Call::Bind {
            fd: 3,
            host: String::new(),
            port: 0,
        },
        Call::Listen { fd: 3, backlog: 1 },
        Call::Close { fd: 3 },
        Call::Resolve { host: "lab".into() },
        Call::Hostname,
        Call::TakeError { fd: 3 },
    ]
    .iter()
    .filter(|c| c.waits())
    .map(Call::name)
    .collect();
    assert_eq!(waits, ["bind", "listen", "resolve"]);
}
