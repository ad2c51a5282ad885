//! The error type of the crate: which step failed, on which field or offset, expected versus
//! actual.

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong when parsing firmware, kernels and event logs or computing a
/// measurement.
///
/// Offsets are byte offsets from the start of the input named in `what` (the firmware file, the
/// kernel image). Fields are named as the specification that defines them spells them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A structure does not fit in the input.
    #[error(
        "{what} at offset {offset:#x} needs {needed} bytes, but the input (or the entry holding it) ends at offset {len:#x}"
    )]
    Truncated {
        /// The structure that does not fit.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// How many bytes it needs.
        needed: u64,
        /// Where the input, or the structure holding this one, ends.
        len: u64,
    },

    /// A signature or magic value is wrong.
    #[error("{what} at offset {offset:#x}: expected {expected:?}, found {actual:?}")]
    BadMagic {
        /// The structure whose signature is wrong.
        what: &'static str,
        /// Where the signature sits.
        offset: u64,
        /// The signature the specification requires.
        expected: String,
        /// The bytes found, lossily decoded.
        actual: String,
    },

    /// A field holds a value the specification does not allow.
    #[error("{what} at offset {offset:#x} is {actual:#x}: expected {expected}")]
    BadField {
        /// The field.
        what: &'static str,
        /// Where the field sits.
        offset: u64,
        /// What the specification allows.
        expected: &'static str,
        /// The value found.
        actual: u64,
    },

    /// Arithmetic on values from the input overflowed.
    #[error("{what} overflows")]
    Overflow {
        /// The computation that overflowed.
        what: &'static str,
    },

    /// The firmware image cannot be mapped below 4 GiB page by page.
    #[error("the firmware is {len} bytes: expected a non-zero multiple of 4096 of at most 4 GiB")]
    FirmwareSize {
        /// The length of the firmware image.
        len: u64,
    },

    /// The firmware lacks a footer-table entry a measurement needs.
    #[error("the firmware's OVMF footer table has no {what} entry")]
    MissingEntry {
        /// The missing entry.
        what: &'static str,
    },

    /// A kernel was given, but the firmware cannot measure it (sev-snp-measure says "Kernel
    /// specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section").
    #[error(
        "kernel specified but the OVMF metadata doesn't include an SNP_KERNEL_HASHES section (use an AmdSevX64 build)"
    )]
    NoKernelHashesSection,

    /// A kernel was given for an SEV or SEV-ES launch, but the firmware has no SEV hashes table
    /// (the footer entry is missing or its GPA is 0).
    #[error(
        "kernel specified but the firmware has no SEV hashes table (missing footer entry or GPA 0)"
    )]
    NoSevHashesTable,

    /// An SEV metadata section has a type this crate does not know.
    #[error("SEV metadata section {index} has unknown type {section_type:#x}")]
    UnknownSectionType {
        /// The index of the section in file order.
        index: usize,
        /// The type found.
        section_type: u32,
    },

    /// A launch parameter is out of range or unknown.
    #[error("launch parameter {field} is {actual:?}: expected {expected}")]
    BadParameter {
        /// The parameter.
        field: &'static str,
        /// What is allowed.
        expected: &'static str,
        /// The value given.
        actual: String,
    },
}
