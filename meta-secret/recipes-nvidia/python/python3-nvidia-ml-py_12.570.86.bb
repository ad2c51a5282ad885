SUMMARY = "pynvml: Python bindings for the NVIDIA Management Library"
HOMEPAGE = "https://pypi.org/project/nvidia-ml-py/"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://pynvml.py;beginline=2;endline=26;md5=ec1d00eab5f313cc0c1c579f9961ec72"

# The upstream build's version and wheel. pynvml loads libnvidia-ml.so.1, from the machine's
# driver package, when it is first used.
SECRET_VM_WHEEL_URL = "https://files.pythonhosted.org/packages/d8/a8/ec37169be4e2b7063b9076ed3fe0661e87335fbca665eed3f48c415cb234/nvidia_ml_py-12.570.86-py3-none-any.whl"
SRC_URI[sha256sum] = "58907de35a845abd13dcb227f18298f3b5dd94a72d04c9e594e77711e95c0b51"

inherit secret-vm-wheel
