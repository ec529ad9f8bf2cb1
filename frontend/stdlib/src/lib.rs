//! The Python standard library the page's runtime ships: RustPython 0.6's `Lib/` (CPython 3.13's pure
//! Python modules, adapted), compiled by `build.rs` into RustPython's frozen bytecode at build time, less
//! what cannot work in a browser or is not for a socket course (the list and the reasons are in
//! `build.rs`), and compiled as `python -OO` compiles (no docstrings, no asserts). The frozen library
//! shrinks from 7.9 MB to 3.9 MB, and the gzipped runtime from 12.5 MB to 8.5 MB.
//!
//! Only for wasm32: built natively the library is empty (the native tests never run Python), so native
//! builds skip the minute of compiling it.

#![no_std]

use rustpython_compiler_core::frozen::FrozenLib;

/// Every module of the library, for `InterpreterBuilder::add_frozen_modules`.
pub static STDLIB: &FrozenLib =
    FrozenLib::from_ref(include_bytes!(concat!(env!("OUT_DIR"), "/stdlib.frozen")));
