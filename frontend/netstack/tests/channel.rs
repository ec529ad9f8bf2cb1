//! The call buffer's handshake, both sides in one thread over plain memory.

use std::cell::{Cell, RefCell};

use bytes::Bytes;
use soket_netstack::channel::{CallBuffer, Memory, CAPACITY, SIZE};
use soket_netstack::{Call, Reply};
use soket_protocol::errno::EMSGSIZE;

struct Plain {
    slots: [Cell<i32>; 16],
    bytes: RefCell<Vec<u8>>,
}

impl Memory for Plain {
    fn load(&self, slot: u32) -> i32 {
        self.slots[slot as usize].get()
    }
    fn store(&self, slot: u32, value: i32) {
        self.slots[slot as usize].set(value);
    }
    fn wait(&self, _slot: u32, _value: i32) {}
    fn notify(&self, _slot: u32) {}
    fn read(&self, offset: u32, len: u32) -> Vec<u8> {
        self.bytes.borrow()[offset as usize..(offset + len) as usize].to_vec()
    }
    fn write(&self, offset: u32, bytes: &[u8]) {
        self.bytes.borrow_mut()[offset as usize..offset as usize + bytes.len()]
            .copy_from_slice(bytes);
    }
}

fn buffer() -> CallBuffer<Plain> {
    CallBuffer::new(Plain {
        slots: Default::default(),
        bytes: RefCell::new(vec![0; SIZE as usize]),
    })
}

#[test]
fn a_call_goes_over_and_its_reply_comes_back_once() {
    let buffer = buffer();
    assert!(buffer.call().is_none(), "nothing requested yet");
    let call = Call::Close { fd: 3 };
    buffer.request(7, &call).expect("fits");
    assert!(buffer.take_reply(7).is_none(), "no reply yet");
    let (seq, got) = buffer.call().expect("requested");
    assert_eq!((seq, got.expect("decodes")), (7, call));
    buffer.reply(7, &Reply::Done);
    assert_eq!(
        buffer.take_reply(7).expect("there").expect("decodes"),
        Reply::Done
    );
    assert!(buffer.take_reply(7).is_none(), "taken");
    assert!(buffer.call().is_none(), "idle again");
}

#[test]
fn a_reply_to_an_abandoned_call_does_not_answer_the_next_one() {
    let buffer = buffer();
    buffer.request(1, &Call::Hostname).expect("fits");
    buffer.abandon();
    buffer.request(2, &Call::Close { fd: 3 }).expect("fits");
    buffer.reply(1, &Reply::Text("late".into()));
    assert!(buffer.take_reply(2).is_none());
    buffer.reply(2, &Reply::Done);
    assert_eq!(
        buffer.take_reply(2).expect("there").expect("decodes"),
        Reply::Done
    );
}

#[test]
fn what_does_not_fit_the_buffer_is_emsgsize() {
    let buffer = buffer();
    let big = Bytes::from(vec![0; CAPACITY as usize]);
    let call = Call::SendTo {
        fd: 3,
        data: big.clone(),
        host: "localhost".into(),
        port: 9,
    };
    assert_eq!(
        buffer.request(1, &call),
        Err(Reply::Error {
            errno: EMSGSIZE,
            message: "Message too long".into()
        })
    );
    buffer.request(2, &Call::Hostname).expect("fits");
    buffer.reply(2, &Reply::Data(big));
    let Some(Ok(Reply::Error { errno, .. })) = buffer.take_reply(2) else {
        panic!("an error")
    };
    assert_eq!(errno, EMSGSIZE);
}
