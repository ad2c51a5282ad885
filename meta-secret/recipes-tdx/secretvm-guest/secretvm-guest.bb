SUMMARY = "secretvm-guest: extends TDX RTMRs through Linux's measurement registers in sysfs"
DESCRIPTION = "The gcp-tdx initramfs measures the workload into RTMR3 with it: one 48-byte \
write to /sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384 (Linux 6.16 and later), \
a sha256 zero-padded to 48 bytes as attest-tool extendrt pads it. Its source is in this layer, \
a Rust package without dependencies, built offline with cargo --frozen."
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

SRC_URI = "file://secretvm-guest/"
S = "${WORKDIR}/secretvm-guest"

# secret-vm-cargo-vendor with no crates.io dependency at all: Cargo.lock lists only the package,
# so there is no ${BPN}-crates.inc and cargo reads nothing but this directory.
inherit cargo_bin secret-vm-cargo-vendor

COMPATIBLE_HOST = "x86_64.*-linux"
