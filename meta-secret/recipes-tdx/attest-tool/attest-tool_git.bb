SUMMARY = "attest-tool: the initramfs's TDX client (report, quote, RTMR extend)"
DESCRIPTION = "secret-vm-ops attest_tool, one C++ file over libtdx_attest. The TDX initramfs \
runs 'attest-tool extendrt 3 <hex>': the hex is decoded into the zeroed 48-byte extend data \
(a 32-byte sha256 is zero-padded), then extended into RTMR3 through /dev/tdx_guest, which the \
kernel-module-tdx-guest driver provides."
HOMEPAGE = "https://github.com/scrtlabs/secret-vm-ops"

# The repository's LICENSE is not MIT (as the upstream build's recipe declared) but Gamma
# Research and Development's own terms, which restrict use to non-commercial purposes and
# forbid modified copies. The licence flag makes a build stop unless LICENSE_FLAGS_ACCEPTED
# says so; the secret-vm distro accepts it, where the decision is visible.
LICENSE = "secret-vm-ops"
NO_GENERIC_LICENSE[secret-vm-ops] = "../LICENSE"
LIC_FILES_CHKSUM = "file://../LICENSE;md5=dbcf1c1d8ee262f0b0a8d5c98c7f2236"
LICENSE_FLAGS = "secret-vm-ops"

PV = "0+git"
SRC_URI = "git://github.com/scrtlabs/secret-vm-ops.git;protocol=https;nobranch=1"
SRCREV = "4924e7638412ff8567cb1a9f26353cb39ed75721"
S = "${WORKDIR}/git/attest_tool"

DEPENDS = "libtdx-attest"
COMPATIBLE_HOST = "x86_64.*-linux"

do_compile() {
    ${CXX} ${CXXFLAGS} ${LDFLAGS} -o attest-tool ${S}/attest_tool.cpp -ltdx_attest
}

do_install() {
    install -D -m 0755 attest-tool ${D}${bindir}/attest-tool
}
