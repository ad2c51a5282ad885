SUMMARY = "snpguest: the AMD SEV-SNP guest's attestation report, certificate and key tool"
DESCRIPTION = "virtee/snpguest, which secret-vm-scripts-sev runs in SEV-SNP guests. Built \
offline: cargo takes only the crates listed in snpguest-crates.inc, each checked by sha256."
HOMEPAGE = "https://github.com/virtee/snpguest"
# Apache-2.0, as its Cargo.toml and LICENSE say (the upstream build's recipe declared MIT).
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=86d3f3a95c324c9479bd8986968f4327"

# 0.9.1 plus documentation commits, as pinned by the upstream build at 1859e90.
PV = "0.9.1+git"
SRC_URI = "git://github.com/virtee/snpguest.git;protocol=https;nobranch=1"
SRCREV = "255496e2d5d7521ed664be2615f03d56e124321f"
S = "${WORKDIR}/git"

inherit cargo_bin secret-vm-cargo-vendor

# Written by `bitbake -c update_crates snpguest` (poky's class, run on this commit's Cargo.lock).
require ${BPN}-crates.inc

# snpguest asks for the openssl crate's "vendored" feature, which builds OpenSSL 3.4.0 from the
# openssl-src crate into the binary. That copy records where it was built: its configured
# directories and its compiler flags are strings in the binary, under the build directory, so
# the binary (and the root file system that carries it) changed with the build directory, and
# no prefix map reaches them. OPENSSL_NO_VENDOR makes openssl-sys use the distro's OpenSSL
# instead, found through pkg-config, as other recipes do; it also gets the distro's fixes.
export OPENSSL_NO_VENDOR = "1"
DEPENDS += "openssl"

COMPATIBLE_HOST = "x86_64.*-linux"
