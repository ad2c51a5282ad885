SUMMARY = "NVIDIA Local GPU Verifier: checks a GPU's attestation report against NVIDIA's signed reference values"
HOMEPAGE = "https://github.com/NVIDIA/nvtrust"
# The package declares BSD-3-Clause (its metadata and every source file's SPDX line); its
# license file also lists the terms of the libraries it uses.
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://nv_local_gpu_verifier-2.3.0.dist-info/LICENSE.txt;md5=a411985ae7288e79d526516ccb65f9ed \
                    file://verifier/cc_admin.py;beginline=2;endline=3;md5=d2ced7ca91295e651232a6455c4997dc"

# NVIDIA's wheel of nvtrust release v2.3.0 (commit 368b9f95, the upstream build's pin): its
# package files are byte-identical to guest_tools/gpu_verifiers/local_gpu_verifier/src/ there.
SECRET_VM_WHEEL_URL = "https://files.pythonhosted.org/packages/46/ee/5ce4c521ea7c6be5ccd33400d8961b5d89e833436e38f8b795df4b348a50/nv_local_gpu_verifier-2.3.0-py3-none-any.whl"
SRC_URI[sha256sum] = "ebee7d44453a19d2c550cbb259f76c7af53343c8878fc33fcabaabb283c4253d"

inherit secret-vm-wheel

# What its modules import (checked by crates/yocto/tests/python_wheels.py). Its metadata also
# asks for xmlschema, which no module imports.
RDEPENDS:${PN} += "python3-cryptography python3-ecdsa python3-lxml python3-nvidia-ml-py \
                   python3-pyjwt python3-pyopenssl python3-signxml"
