# mkfs.fat takes its time from SOURCE_DATE_EPOCH (see the patch), so the FAT boot partition wic
# makes for the gcp-tdx disk, and with it disk.raw, is the same on every build. wic runs the
# native mkfs.fat (wic-tools depends on dosfstools-native); the target package gets the same
# fix. This append names the version: when poky moves to another dosfstools, BitBake stops on
# the dangling append, and the patch is dropped (a release with SOURCE_DATE_EPOCH support) or
# rewritten.

FILESEXTRAPATHS:prepend := "${THISDIR}/files:"

SRC_URI += "file://0001-mkfs.fat-take-the-time-from-SOURCE_DATE_EPOCH.patch"
