//! Integration tests of the `secretvm` binary against real external tools: GNU cpio, bsdtar,
//! qemu-img and a Linux kernel booted under QEMU.
//!
//! The tools come from `cargo xtask test`, which installs or unpacks them and passes their paths
//! in `SECRETVM_*` variables. With `CI=true` a missing tool fails the test; otherwise the test
//! prints why it is skipped and passes.

#![allow(clippy::disallowed_methods, clippy::print_stderr)]

mod boot;
mod build;
mod build_flow;
mod compare;
mod guest_init;
mod guest_tool;
mod initramfs;
mod iso;
mod lock;
mod measure;
mod qcow2;
mod release;
mod support;
mod verify;
