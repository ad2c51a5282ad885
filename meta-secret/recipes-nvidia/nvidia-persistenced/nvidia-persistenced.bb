SUMMARY = "systemd unit for nvidia-persistenced and the GPU's confidential-computing ready state"
DESCRIPTION = "Starts nvidia-persistenced (from the machine's NVIDIA driver package) with UVM \
persistence, then sets the GPU's confidential-computing ready state with nvidia-smi, as the \
upstream build's GPU images do."
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

SRC_URI = "file://nvidia-persistenced.service"
S = "${WORKDIR}"

inherit systemd

# The binaries come from the driver of the machine's GPU images.
PACKAGE_ARCH = "${MACHINE_ARCH}"
COMPATIBLE_MACHINE = "secret-vm-tdx|secret-vm-sev"
RDEPENDS:${PN}:secret-vm-tdx = "nvidia-legacy"
RDEPENDS:${PN}:secret-vm-sev = "nvidia"

SYSTEMD_SERVICE:${PN} = "nvidia-persistenced.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

do_install() {
    install -D -m 0644 ${WORKDIR}/nvidia-persistenced.service \
        ${D}${systemd_system_unitdir}/nvidia-persistenced.service
}
