require secret-vm-rootfs-common.inc
require secret-vm-rootfs-dev.inc

SUMMARY = "secret-vm root file system, dev"
