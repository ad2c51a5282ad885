SUMMARY = "tdx-guest: /dev/tdx_guest with the TDREPORT and RTMR extend that libtdx_attest uses"
DESCRIPTION = "An out-of-tree kernel module for the TDX initramfs: the in-tree tdx-guest driver \
of the TDX kernel (6.9) cannot extend RTMRs, which attest-tool needs to measure the workload \
into RTMR3. Packaged as kernel-module-tdx-guest; the init loads it with modprobe tdx-guest."
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/GPL-2.0-only;md5=801f80980d171dd6425610833a22dbe6"

inherit module

SRC_URI = "file://Makefile \
           file://tdx-guest.c"
S = "${WORKDIR}"

# Only the TDX kernel turns its own tdx-guest driver off (secret-vm-tdx.cfg); both register
# /dev/tdx_guest. The GCP kernel (6.16) has the in-tree driver instead.
COMPATIBLE_MACHINE = "secret-vm-tdx"
