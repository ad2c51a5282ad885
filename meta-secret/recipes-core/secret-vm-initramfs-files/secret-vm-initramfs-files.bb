SUMMARY = "The /init of the secret-vm initramfs, one per TEE"
DESCRIPTION = "POSIX sh scripts run by busybox: tdx and gcp-tdx measure the workload into \
RTMR3, sev checks it against the measured kernel command line; all then boot an overlay \
root over the read-only OS image. Every failure stops the boot."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = "file://secret-vm-init.sh \
           file://secret-vm-init-tdx.sh \
           file://init-tdx \
           file://init-sev \
           file://init-gcp-tdx"
S = "${WORKDIR}"

# The script differs per machine, so the package does too (not allarch).
PACKAGE_ARCH = "${MACHINE_ARCH}"
COMPATIBLE_MACHINE = "^(secret-vm-tdx|secret-vm-sev|secret-vm-gcp-tdx)$"

SECRET_VM_INIT = ""
SECRET_VM_INIT:secret-vm-tdx = "init-tdx"
SECRET_VM_INIT:secret-vm-sev = "init-sev"
SECRET_VM_INIT:secret-vm-gcp-tdx = "init-gcp-tdx"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${nonarch_base_libdir}
    install -m 0755 ${S}/${SECRET_VM_INIT} ${D}/init
    install -m 0644 ${S}/secret-vm-init.sh ${D}${nonarch_base_libdir}/secret-vm-init.sh
    if [ "${SECRET_VM_INIT}" != "init-sev" ]; then
        install -m 0644 ${S}/secret-vm-init-tdx.sh ${D}${nonarch_base_libdir}/secret-vm-tdx.sh
    fi
}

FILES:${PN} = "/init ${nonarch_base_libdir}/secret-vm-init.sh ${nonarch_base_libdir}/secret-vm-tdx.sh"
RDEPENDS:${PN} = "busybox jq secretvm-guest"
