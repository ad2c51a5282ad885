SUMMARY = "NVIDIA Attestation SDK: local and remote attestation of GPUs and NVSwitches"
HOMEPAGE = "https://github.com/NVIDIA/nvtrust"
# The wheel's license file is the Apache License 2.0; the NVSwitch verifier modules it carries
# are BSD-3-Clause by their SPDX lines.
LICENSE = "Apache-2.0 & BSD-3-Clause"
LIC_FILES_CHKSUM = "file://nv_attestation_sdk-2.3.0.dist-info/LICENSE;md5=6aeb846e84938ab20e7310fedd9a1217 \
                    file://nv_attestation_sdk/verifiers/nv_switch_verifier/config.py;beginline=2;endline=3;md5=d2ced7ca91295e651232a6455c4997dc"

# NVIDIA's wheel of nvtrust release v2.3.0 (commit 368b9f95, the upstream build's pin): its
# package files are byte-identical to guest_tools/attestation_sdk/src/ there.
SECRET_VM_WHEEL_URL = "https://files.pythonhosted.org/packages/e6/db/2e286de703c0a3ccf92a7eee3948c827ff40163be97c03d618b066c0a2ce/nv_attestation_sdk-2.3.0-py3-none-any.whl"
SRC_URI[sha256sum] = "8ea26494c675dc56b9588b7a7c38017bde9a9b7fbe8133d0297fd7d0a86440e6"

inherit secret-vm-wheel

# What its modules import (checked by crates/yocto/tests/python_wheels.py). Its metadata also
# asks for build, pylint, pytest, pytest-cov, twine and xmlschema, which no module imports.
RDEPENDS:${PN} += "python3-cryptography python3-ecdsa python3-lxml python3-nv-local-gpu-verifier \
                   python3-pyjwt python3-pyopenssl python3-requests python3-signxml"
