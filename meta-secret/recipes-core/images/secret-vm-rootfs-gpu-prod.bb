require secret-vm-rootfs-common.inc
require secret-vm-rootfs-gpu.inc
require secret-vm-rootfs-prod.inc

SUMMARY = "secret-vm root file system with the NVIDIA GPU stack, prod"
