SUMMARY = "secretvm-guest: measures and pins the OS image under dm-verity; extends TDX RTMRs in sysfs"
DESCRIPTION = "Every initramfs measures the OS image with it: pin-os-image reads the image once, \
hashing it and building a dm-verity tree in guest memory, and maps it through that tree \
(device-mapper, a loop device, a sealed memfd; no cryptsetup, no udev). The gcp-tdx initramfs \
also extends RTMR3 with it: one 48-byte write to \
/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384 (Linux 6.16 and later), a sha256 \
zero-padded to 48 bytes as attest-tool extendrt pads it. Its source is in this layer, a Rust \
package whose one dependency is sha2, built offline with cargo --frozen."
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

SRC_URI = "file://secretvm-guest/"
S = "${WORKDIR}/secretvm-guest"

# The crates of Cargo.lock (sha2 and what it needs), fetched by checksum: cargo reads them and
# this directory, nothing else.
require ${BPN}-crates.inc

inherit cargo_bin secret-vm-cargo-vendor

COMPATIBLE_HOST = "x86_64.*-linux"
