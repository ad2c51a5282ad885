//! Placeholder: the qcow2 crate is being written.
