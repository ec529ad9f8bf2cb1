//! The layouts of the buffers the runtime shares with the page, as the runtime has them: `layout()`
//! gives them to `www/python-worker.js`, which refuses to start if `www/layout.js` (what the page and
//! the workers build the buffers by) says anything else. The numbers themselves are defined once on this
//! side, in `soket_netstack::channel` and [`crate::stdio`].

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

/// `{ CHANNEL: { STATE, INTERRUPT, SIZE }, CONSOLE: { WRITTEN, READ, CLOSED, RING, RING_SIZE } }`, the
/// shape of `www/layout.js`'s exports of the same names.
#[wasm_bindgen]
pub fn layout() -> Result<Object, JsValue> {
    use crate::stdio;
    use soket_netstack::channel;
    let channel = table(&[
        ("STATE", channel::STATE),
        ("INTERRUPT", channel::INTERRUPT),
        ("SIZE", channel::SIZE),
    ])?;
    let console = table(&[
        ("WRITTEN", stdio::WRITTEN),
        ("READ", stdio::READ),
        ("CLOSED", stdio::CLOSED),
        ("RING", stdio::RING),
        ("RING_SIZE", stdio::RING_SIZE),
    ])?;
    table_of(&[("CHANNEL", channel.into()), ("CONSOLE", console.into())])
}

fn table(entries: &[(&str, u32)]) -> Result<Object, JsValue> {
    let values: Vec<(&str, JsValue)> = entries.iter().map(|&(k, v)| (k, v.into())).collect();
    table_of(&values)
}

fn table_of(entries: &[(&str, JsValue)]) -> Result<Object, JsValue> {
    let object = Object::new();
    for (key, value) in entries {
        Reflect::set(&object, &JsValue::from_str(key), value)?;
    }
    Ok(object)
}
