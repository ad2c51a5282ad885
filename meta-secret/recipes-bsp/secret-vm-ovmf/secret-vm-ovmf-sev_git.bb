SUMMARY = "OVMF for AMD SEV-SNP guests (AMDESE ovmf, AmdSev/AmdSevX64, RELEASE)"
require secret-vm-ovmf-common.inc

PV = "edk2-stable202502"
SRC_URI = "gitsm://github.com/AMDESE/ovmf.git;protocol=https;nobranch=1 \
           ${SECRET_VM_OVMF_PATCHES}"
SRCREV = "fbe0805b2091393406952e84724188f8c1941837"

SECRET_VM_OVMF_DSC = "OvmfPkg/AmdSev/AmdSevX64.dsc"
SECRET_VM_OVMF_BUILD_DIR = "AmdSev"

# AmdSevX64 embeds a grub.efi for its measured direct boot; we boot the kernel through QEMU's
# -kernel (hashes in the launch digest) and embed an empty file instead.
secret_vm_ovmf_prepare() {
    install -d ${S}/OvmfPkg/AmdSev/Grub
    : > ${S}/OvmfPkg/AmdSev/Grub/grub.efi
}
