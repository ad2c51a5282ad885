//! Placeholder: the cpio codec is being written.
