SUMMARY = "libtdx_attest: TDX reports, quotes and RTMR extends from inside a TD"
DESCRIPTION = "The TDX guest attestation library of Intel's SGX/TDX DCAP (QuoteGeneration/\
quote_wrapper/tdx_attest). It talks to the kernel through /dev/tdx_guest (reports, RTMR extend) \
and configfs-tsm or vsock (quotes). Only this library is built, not the rest of DCAP."
HOMEPAGE = "https://github.com/intel/SGXDataCenterAttestationPrimitives"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://License.txt;md5=93fd0fe1bba22774ebaf6112a27e0e65"

# DCAP 1.22 (its QuoteGeneration/common/inc/internal/se_version.h says 1.22.100.3, the PV).
SRC_URI = "git://github.com/intel/SGXDataCenterAttestationPrimitives.git;protocol=https;nobranch=1"
SRCREV = "2562057f6a3149c03f5985826ffaba978ece58c2"
S = "${WORKDIR}/git"

COMPATIBLE_HOST = "x86_64.*-linux"

# The makefiles take CC, CXX, CFLAGS and CXXFLAGS from the environment, but link with their own
# COMMON_LDFLAGS (assigned with := in QuoteGeneration/buildenv.mk) and never read LDFLAGS, so
# the build's LDFLAGS (GNU hash style, sysroot, build-id, prefix maps) would be lost and the
# ldflags QA check would stop the build. A command-line assignment overrides :=, reaches the
# sub-makes through MAKEFLAGS, and keeps the library's own hardening flags in front.
EXTRA_OEMAKE = "'COMMON_LDFLAGS=-Wl,-z,relro,-z,now,-z,noexecstack ${LDFLAGS}'"

do_compile() {
    oe_runmake -C QuoteGeneration tdx_attest
}

do_install() {
    install -d ${D}${libdir} ${D}${includedir}
    install -m 0755 QuoteGeneration/build/linux/libtdx_attest.so.${PV} ${D}${libdir}/
    ln -sf libtdx_attest.so.${PV} ${D}${libdir}/libtdx_attest.so.1
    ln -sf libtdx_attest.so.1 ${D}${libdir}/libtdx_attest.so
    install -m 0644 QuoteGeneration/quote_wrapper/tdx_attest/tdx_attest.h ${D}${includedir}/
}
