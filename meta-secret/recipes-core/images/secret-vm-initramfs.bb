SUMMARY = "secret-vm initramfs: measures or checks the workload, then boots the rootfs ISO"
DESCRIPTION = "A busybox initramfs whose /init (secret-vm-initramfs-files) hashes the \
docker-compose file, the rootfs image and the optional docker-files.tar, records the hashes \
in RTMR3 (TDX) or compares them with the kernel command line (SEV-SNP), and switches to an \
overlay root over the read-only rootfs, which it reads only through dm-verity."
LICENSE = "MIT"

inherit core-image

# Only what /init needs: no package manager, no locales, no kernel in the image. secretvm-guest
# measures the OS image and pins it under dm-verity in the same read (and extends RTMR3 on
# gcp-tdx); it talks to device-mapper itself, so neither cryptsetup nor udev is installed.
PACKAGE_INSTALL = "base-files busybox jq secretvm-guest secret-vm-initramfs-files"
PACKAGE_INSTALL:append:secret-vm-tdx = " attest-tool kernel-module-tdx-guest dstack-util"
# init-gcp-tdx finds the config disk and the root partition by label with util-linux blkid
# (busybox's blkid is optional; the boot test found a busybox without it).
PACKAGE_INSTALL:append:secret-vm-gcp-tdx = " dstack-util util-linux-blkid"

IMAGE_FEATURES = ""
IMAGE_LINGUAS = ""

# The deploy link is secret-vm-initramfs-<MACHINE>.rootfs.cpio.gz (yocto/secretvm.toml).
IMAGE_FSTYPES = "${INITRAMFS_FSTYPES}"
