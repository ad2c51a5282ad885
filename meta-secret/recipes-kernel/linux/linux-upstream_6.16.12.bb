SUMMARY = "Linux kernel for TDX guests on Google Cloud (kernel.org stable)"
SECTION = "kernel"
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://COPYING;md5=6bc538ed5bd9a7fc9398086aedcd7e46"

inherit kernel

LINUX_VERSION = "${PV}"
LINUX_VERSION_EXTENSION = "-upstream"

# A cgit snapshot: its bytes are checked against the sha256 below, so a regenerated snapshot
# fails the fetch instead of changing the kernel.
SRC_URI = "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git/snapshot/linux-${PV}.tar.gz \
           file://secret-vm-common.cfg \
           file://secret-vm-nat.cfg \
           file://secret-vm-gcp.cfg"
SRC_URI[sha256sum] = "2f23c309011f9ec71351fa386966a69bd97e6366ed917013d7f5471e6443f54b"
S = "${WORKDIR}/linux-${PV}"

COMPATIBLE_MACHINE = "^secret-vm-gcp-tdx$"

DEPENDS += "openssl-native util-linux-native bison-native flex-native elfutils-native"

# The base configuration is the kernel's own arch/x86/configs/x86_64_defconfig, from the
# pinned source (upstream used a full generated .config instead; ours is not that text, so the
# kernel, and its measurement, differ from upstream's). Our fragments go on top, and
# kernel.bbclass runs olddefconfig afterwards, which fills in every option left unset.
do_configure:prepend() {
    ${S}/scripts/kconfig/merge_config.sh -m -O ${B} ${S}/arch/x86/configs/x86_64_defconfig \
        ${WORKDIR}/secret-vm-common.cfg ${WORKDIR}/secret-vm-nat.cfg ${WORKDIR}/secret-vm-gcp.cfg
}
