SUMMARY = "signxml: XML Signature and XAdES signing and verification"
HOMEPAGE = "https://github.com/XML-Security/signxml"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://signxml-3.2.2.dist-info/LICENSE;md5=136e4f49dbf29942c572a3a8f6e88a77"

# 3.2.2, not the 4.x the upstream build used: the GPU verifier is written for signxml 3.2
# (it pins 3.2.0 and passes ca_path to XMLVerifier.verify, which 4.0 removed, so every RIM
# signature check fails with 4.x), and 3.2.2 is the 3.2 release whose requirements (lxml < 6,
# cryptography >= 3.4.8) the scarthgap versions meet; 3.2.0 asks for lxml < 5, 4.x for
# cryptography >= 43. crates/yocto/tests/python_wheels.py verifies NVIDIA's signed reference
# values with it.
SECRET_VM_WHEEL_URL = "https://files.pythonhosted.org/packages/b2/e3/f207fab197b8beeb1fd4496e3c165373579723b018b0e56516039a2db231/signxml-3.2.2-py3-none-any.whl"
SRC_URI[sha256sum] = "9201fefe0e6657d2b94a8d7682245a6397644fc6d71694c7b9420dbfc58be2e1"

inherit secret-vm-wheel

RDEPENDS:${PN} += "python3-certifi python3-cryptography python3-lxml python3-pyopenssl"
