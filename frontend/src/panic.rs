//! Reports a Rust panic to the page before the wasm instance dies.
//!
//! A panic aborts the instance (the worker's call into wasm throws `RuntimeError: unreachable`), so the
//! hook is the only place that knows why. It logs the message and stack to the console (what the browser
//! tests dump when they fail) and hands the message to the worker's callback, which shows it in the
//! program's stderr.

use std::cell::RefCell;

use js_sys::Function;
use wasm_bindgen::JsValue;

thread_local! {
    /// The worker's `onPanic(message)`.
    static REPORT: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Installs the hook; `report` receives the message of any later panic.
pub(crate) fn install(report: Function) {
    REPORT.with(|r| *r.borrow_mut() = Some(report));
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let message = info.to_string();
        // Never panic in the hook: a report that cannot be made is dropped.
        let _ = REPORT.try_with(|r| {
            if let Ok(r) = r.try_borrow() {
                if let Some(report) = &*r {
                    let _ = report.call1(&JsValue::UNDEFINED, &JsValue::from_str(&message));
                }
            }
        });
    }));
}
