SUMMARY = "dstack-util: records the workload's events in RTMR3 for the dstack and gramine KMS"
DESCRIPTION = "Dstack-TEE/dstack's guest utility. The TDX and gcp-tdx initramfs run 'dstack-util extend \
--event <name> --payload <value>' when secret-vm.json names the dstack or gramine KMS. Built \
offline from the crates in dstack-util-crates.inc and from the git repositories named below."
HOMEPAGE = "https://github.com/Dstack-TEE/dstack"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://../LICENSE;md5=86d3f3a95c324c9479bd8986968f4327"

# The commit the upstream build pins at 1859e90, and the commits its Cargo.lock names for the
# crates it takes from git (rocket, rocket_codegen, rocket_http, s2n-quic-h3, rocket-apitoken).
PV = "0+git"
SRC_URI = "git://github.com/Dstack-TEE/dstack.git;protocol=https;nobranch=1;name=dstack \
           git://github.com/rwf2/Rocket.git;protocol=https;nobranch=1;name=rocket;destsuffix=cargo_git/rocket \
           git://github.com/SergioBenitez/s2n-quic-h3.git;protocol=https;nobranch=1;name=s2n-quic-h3;destsuffix=cargo_git/s2n-quic-h3 \
           git://github.com/kvinwang/rocket-apitoken.git;protocol=https;nobranch=1;name=rocket-apitoken;destsuffix=cargo_git/rocket-apitoken \
           file://0001-tdx-attest-extend-rtmr-through-sysfs.patch;patchdir=.."
SRCREV_dstack = "c8fc789bfad06ae3bcc94337d0d0a2d81c660ebe"
SRCREV_rocket = "f9de1bf4671100b2f9c9bea6ce206fc4748ca999"
SRCREV_s2n-quic-h3 = "f83247128132c968d57a99fa5e76ac7f1528ea10"
SRCREV_rocket-apitoken = "7b5c1e864217b928e08913886c1a3ddd849e254c"
SRCREV_FORMAT = "dstack"

# The patch makes `dstack-util extend` write the kernel's sysfs RTMR file where it exists
# (Linux 6.16 and later: the gcp-tdx kernel) and keep libtdx_attest's ioctl elsewhere. It
# changes tdx-attest, a sibling of ${S}, hence patchdir.

# The workspace member; cargo uses the workspace's Cargo.lock one directory up.
S = "${WORKDIR}/git/dstack-util"
SECRET_VM_CARGO_LOCK = "${WORKDIR}/git/Cargo.lock"

inherit cargo_bin secret-vm-cargo-vendor

# The output of poky's update_crates code on the workspace's Cargo.lock alone (746 crates).
# `bitbake -c update_crates dstack-util` would also read the three standalone Cargo.lock files
# of tdx-attest, tdx-attest-sys and key-provider-build, which this build does not use: run it
# with CARGO_LOCK_SRC_DIR set to a directory holding only the workspace's Cargo.lock.
require ${BPN}-crates.inc

# The repositories of the crates Cargo.lock takes from git, each checked out by SRC_URI above.
SECRET_VM_CARGO_GIT[rocket] = "https://github.com/rwf2/Rocket cargo_git/rocket"
SECRET_VM_CARGO_GIT[s2n-quic-h3] = "https://github.com/SergioBenitez/s2n-quic-h3.git cargo_git/s2n-quic-h3"
SECRET_VM_CARGO_GIT[rocket-apitoken] = "https://github.com/kvinwang/rocket-apitoken cargo_git/rocket-apitoken"

COMPATIBLE_HOST = "x86_64.*-linux"
