# The driver of the TDX GPU images: the 550 branch (as upstream's build at 1859e90).
require nvidia-driver.inc

SRC_URI[sha256sum] = "6a4838e2cdb26e4c0e07367ac0d3bcf799d56b5286f68fa201be3d3ddb88aac4"
NVIDIA_LICENSE_MD5 = "01c5e23f445259a6d1b4867efec45d22"

COMPATIBLE_MACHINE = "secret-vm-tdx"
