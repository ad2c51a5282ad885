# The applets the secret-vm images use beyond poky's busybox defconfig (where all five are
# "is not set"), as the upstream build enabled them. busybox.inc merges every *.cfg of SRC_URI
# into the configuration. This busybox is also the initramfs's, whose bytes the launch
# measurements cover.
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
SRC_URI += "file://secret-vm.cfg"
