SUMMARY = "OVMF for Intel TDX guests (edk2 OvmfPkgX64, RELEASE, no secure boot)"
require secret-vm-ovmf-common.inc

PV = "edk2-3a3b12cb"
SRC_URI = "gitsm://github.com/tianocore/edk2.git;protocol=https;nobranch=1 \
           ${SECRET_VM_OVMF_PATCHES}"
SRCREV = "3a3b12cbdae2e89b0e365eb01c378891d0d9037c"

SECRET_VM_OVMF_DSC = "OvmfPkg/OvmfPkgX64.dsc"
SECRET_VM_OVMF_BUILD_DIR = "OvmfX64"
