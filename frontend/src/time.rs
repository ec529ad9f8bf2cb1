//! The clocks and `time.sleep` that a browser worker can give.
//!
//! Upstream's `time.monotonic`, `perf_counter`, `time_ns` and `sleep` use std's clock and thread sleep,
//! which are unsupported on `wasm32-unknown-unknown` and abort the whole instance. [`install`] replaces
//! them in the `time` module before the program runs:
//! - `monotonic` and `perf_counter` (and their `_ns` forms) read `performance.now()`;
//! - `time_ns` reads `performance.timeOrigin + performance.now()`, the wall clock (`time.time` is
//!   upstream's, from `Date.now()`, and works);
//! - `sleep` parks the worker in `Atomics.wait` on a `SharedArrayBuffer` with a timeout: no spinning, and
//!   whoever holds the buffer can wake it early (the Stop button will, to raise `KeyboardInterrupt`).
//!
//! The arithmetic is plain Rust and tested natively; the bindings are wasm32 only.

/// How many milliseconds to wait next to reach `deadline` (both on `performance.now()`'s clock), or
/// `None` once it has passed. `Atomics.wait` may return early (a notify, or a clock coarser than the
/// timeout), so a sleep waits again until this says it is done.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn next_wait(deadline: f64, now: f64) -> Option<f64> {
    let remaining = deadline - now;
    (remaining > 0.0).then_some(remaining)
}

/// Milliseconds as the whole nanoseconds `*_ns` clocks return (never negative). The whole and fractional
/// milliseconds convert apart: a wall-clock reading (~1.7e18 ns) is past f64's exact integers.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn ns_from_millis(ms: f64) -> u64 {
    let ms = ms.max(0.0);
    let whole = ms.trunc();
    whole as u64 * 1_000_000 + ((ms - whole) * 1_000_000.0).round() as u64
}

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::install;

#[cfg(target_arch = "wasm32")]
mod wasm {
    use core::time::Duration;
    use std::cell::OnceCell;

    use js_sys::{Atomics, Int32Array, SharedArrayBuffer};
    use rustpython_vm::{AsObject, PyObjectRef, PyResult, VirtualMachine};
    use wasm_bindgen::JsCast;
    use web_sys::{Performance, WorkerGlobalScope};

    use super::{next_wait, ns_from_millis};

    thread_local! {
        /// The worker's clock. Cached: looking it up goes through JavaScript.
        static PERFORMANCE: Performance = js_sys::global()
            .unchecked_into::<WorkerGlobalScope>()
            .performance()
            .expect("a worker has `performance`");
        /// The cell `time.sleep` parks on. Nobody stores to it yet; a notify on it ends a sleep early.
        static SLEEP_CELL: OnceCell<Int32Array> = const { OnceCell::new() };
    }

    /// Replaces the clocks and `sleep` of the `time` module, before any program imports it.
    pub(crate) fn install(vm: &VirtualMachine) -> PyResult<()> {
        let time = vm.import("time", 0)?;
        let time = time.as_object();
        time.set_attr("monotonic", vm.new_function("monotonic", monotonic), vm)?;
        time.set_attr(
            "monotonic_ns",
            vm.new_function("monotonic_ns", monotonic_ns),
            vm,
        )?;
        time.set_attr(
            "perf_counter",
            vm.new_function("perf_counter", monotonic),
            vm,
        )?;
        time.set_attr(
            "perf_counter_ns",
            vm.new_function("perf_counter_ns", monotonic_ns),
            vm,
        )?;
        time.set_attr("time_ns", vm.new_function("time_ns", time_ns), vm)?;
        time.set_attr("sleep", vm.new_function("sleep", sleep), vm)?;
        Ok(())
    }

    /// Milliseconds since the worker started, with sub-millisecond resolution (cross-origin isolated
    /// pages get 5 µs).
    pub(crate) fn now_ms() -> f64 {
        PERFORMANCE.with(Performance::now)
    }

    fn monotonic() -> f64 {
        now_ms() / 1000.0
    }

    fn monotonic_ns() -> u64 {
        ns_from_millis(now_ms())
    }

    fn time_ns() -> u64 {
        PERFORMANCE.with(|p| ns_from_millis(p.time_origin() + p.now()))
    }

    /// `time.sleep(seconds)`, with CPython's errors for a bad argument.
    fn sleep(seconds: PyObjectRef, vm: &VirtualMachine) -> PyResult<()> {
        vm.audit("time.sleep", || (seconds.clone(),))?;
        let type_name = seconds.class().name().to_owned();
        let duration = seconds.try_into_value::<Duration>(vm).map_err(|e| {
            // The conversion is shared with other callers; these are `time.sleep`'s words.
            if e.class().is(vm.ctx.exceptions.value_error)
                && e.args()
                    .as_slice()
                    .first()
                    .and_then(|arg| arg.str(vm).ok())
                    .is_some_and(|s| s.as_bytes() == b"negative duration")
            {
                return vm.new_value_error("sleep length must be non-negative");
            }
            if e.class().is(vm.ctx.exceptions.type_error) {
                return vm.new_type_error(format!(
                    "'{type_name}' object cannot be interpreted as an integer or float"
                ));
            }
            e
        })?;
        let deadline = now_ms() + duration.as_secs_f64() * 1000.0;
        crate::stdio::flush();
        SLEEP_CELL.with(|cell| {
            let cell = cell.get_or_init(|| Int32Array::new(&SharedArrayBuffer::new(4)));
            while let Some(wait) = next_wait(deadline, now_ms()) {
                Atomics::wait_with_timeout(cell, 0, 0, wait).map_err(|e| {
                    vm.new_runtime_error(format!(
                        "time.sleep cannot block here (Atomics.wait: {})",
                        js_sys::JSON::stringify(&e)
                            .map(String::from)
                            .unwrap_or_default()
                    ))
                })?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_what_remains() {
        assert_eq!(next_wait(1000.0, 800.0), Some(200.0));
        assert_eq!(next_wait(1000.0, 999.5), Some(0.5));
    }

    #[test]
    fn is_done_at_or_after_the_deadline() {
        assert_eq!(next_wait(1000.0, 1000.0), None);
        assert_eq!(next_wait(1000.0, 1000.1), None);
        // `time.sleep(0)` does not wait at all.
        assert_eq!(next_wait(5.0, 5.0), None);
    }

    #[test]
    fn nanoseconds_from_milliseconds() {
        assert_eq!(ns_from_millis(0.0), 0);
        assert_eq!(ns_from_millis(1.5), 1_500_000);
        assert_eq!(ns_from_millis(0.005), 5_000);
        assert_eq!(ns_from_millis(-1.0), 0);
        // A wall-clock reading today keeps its fraction of a millisecond.
        assert_eq!(
            ns_from_millis(1_750_000_000_123.25),
            1_750_000_000_123_250_000
        );
    }
}
