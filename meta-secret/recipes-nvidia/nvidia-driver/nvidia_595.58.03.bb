# The driver of the SEV GPU images (as upstream's build at 1859e90).
require nvidia-driver.inc

SRC_URI[sha256sum] = "8c0d4f967b7932c4ab5714272aee8103392b0a702c92afa555176d36205829f9"
NVIDIA_LICENSE_MD5 = "92aa2e2af6aa0bcba1c3fe49da021937"

COMPATIBLE_MACHINE = "secret-vm-sev"
