SUMMARY = "Linux kernel for AMD SEV-SNP guests (AMDESE snp-guest-latest)"
SECTION = "kernel"
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://COPYING;md5=6bc538ed5bd9a7fc9398086aedcd7e46"

inherit kernel

LINUX_VERSION = "6.16.0"
LINUX_VERSION_EXTENSION = "-sev-snp-guest"
PV = "${LINUX_VERSION}+git"

# Fetched by commit (nobranch=1), so the build keeps working after the branch moves on.
SRC_URI = "git://github.com/AMDESE/linux.git;protocol=https;nobranch=1 \
           file://secret-vm-common.cfg \
           file://secret-vm-nat.cfg \
           file://secret-vm-sev.cfg"
SRCREV = "038d61fd642278bab63ee8ef722c50d10ab01e8f"
S = "${WORKDIR}/git"

COMPATIBLE_MACHINE = "^secret-vm-sev$"

DEPENDS += "openssl-native util-linux-native bison-native flex-native elfutils-native"

# The base configuration is the kernel's own arch/x86/configs/x86_64_defconfig, from the
# pinned source (upstream used a full generated .config instead; ours is not that text, so the
# kernel, and its measurement, differ from upstream's). Our fragments go on top, and
# kernel.bbclass runs olddefconfig afterwards, which fills in every option left unset.
do_configure:prepend() {
    ${S}/scripts/kconfig/merge_config.sh -m -O ${B} ${S}/arch/x86/configs/x86_64_defconfig \
        ${WORKDIR}/secret-vm-common.cfg ${WORKDIR}/secret-vm-nat.cfg ${WORKDIR}/secret-vm-sev.cfg
}
