SUMMARY = "OVMF for Intel TDX guests (edk2 OvmfPkgX64, RELEASE, no secure boot)"
require secret-vm-ovmf-common.inc

PV = "edk2-3a3b12cb"
# CVE-2024-38796 (BasePeCoffLib overflow) was fixed in edk2 c95233b8 (2024-09-30), after this
# commit: oe-core's backport of that fix, from the pinned poky checkout, applies to this tree.
# CVE-2024-1298 (S3 ResumeCount overflow, oe-core's other ovmf backport) is fixed here already
# (edk2 284dbac4 is an ancestor of this commit).
SRC_URI = "gitsm://github.com/tianocore/edk2.git;protocol=https;nobranch=1 \
           ${SECRET_VM_OVMF_PATCHES} \
           file://0001-MdePkg-Fix-overflow-issue-in-BasePeCoffLib.patch"
SRCREV = "3a3b12cbdae2e89b0e365eb01c378891d0d9037c"

SECRET_VM_OVMF_DSC = "OvmfPkg/OvmfPkgX64.dsc"
SECRET_VM_OVMF_BUILD_DIR = "OvmfX64"
