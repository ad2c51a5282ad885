# Pure-Python packages installed from the wheel their authors published, pinned by sha256.
#
# For Python projects whose release is a wheel on PyPI (some publish no source archive for a
# release), a recipe names the wheel's URL and checksum:
#     SECRET_VM_WHEEL_URL = "https://files.pythonhosted.org/packages/<..>/<name>-<version>-py3-none-any.whl"
#     SRC_URI[sha256sum] = "<sha256 of the wheel, as PyPI lists it>"
#     inherit secret-vm-wheel
# The fetcher checks the sha256 like any download. Nothing is compiled: do_install runs
# pypa/installer on the wheel, as poky's python_pep517 class does on the wheel it builds, so the
# package's .dist-info (METADATA, RECORD, entry points) is installed as pip would install it.
# Only pure-Python wheels (tag py3-none-any or py2.py3-none-any) are accepted.
#
# S holds the wheel's files after do_unpack, so LIC_FILES_CHKSUM names the license files the
# wheel itself carries (file://<name>-<version>.dist-info/LICENSE, or a source file's header).
#
# Every wheel recipe depends on the whole standard library (python3-modules, which poky's
# python3 package provides): which split python3-* package holds each module a wheel imports
# is not checked here. Third-party imports are: each must be in the recipe's RDEPENDS
# (crates/yocto/tests/python_wheels.py).

inherit setuptools3-base

DEPENDS:append = " python3-installer-native"

SECRET_VM_WHEEL_URL ??= ""
SECRET_VM_WHEEL = "${@os.path.basename(d.getVar('SECRET_VM_WHEEL_URL'))}"
SECRET_VM_WHEEL_DIR = "${WORKDIR}/wheel"

SRC_URI = "${SECRET_VM_WHEEL_URL};subdir=wheel"
S = "${WORKDIR}/wheel-contents"

RDEPENDS:${PN}:append:class-target = " python3-modules"

python __anonymous() {
    import re
    wheel = d.getVar("SECRET_VM_WHEEL")
    if not re.fullmatch(r"[A-Za-z0-9_.]+-[A-Za-z0-9_.+!]+-(py3|py2\.py3)-none-any\.whl", wheel or ""):
        bb.fatal("%s: SECRET_VM_WHEEL_URL must name a pure-Python wheel "
                 "(<name>-<version>-py3-none-any.whl), not %r"
                 % (d.getVar("FILE"), d.getVar("SECRET_VM_WHEEL_URL")))
}

# Extracts the wheel into S (for the license check), refusing any member whose path would
# leave S.
python secret_vm_wheel_extract() {
    import os
    import zipfile
    wheel = os.path.join(d.getVar("SECRET_VM_WHEEL_DIR"), d.getVar("SECRET_VM_WHEEL"))
    dest = d.getVar("S")
    bb.utils.remove(dest, recurse=True)
    bb.utils.mkdirhier(dest)
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            parts = name.split("/")
            if name.startswith("/") or "\\" in name or ".." in parts:
                bb.fatal("%s: member %r would be written outside %s" % (wheel, name, dest))
        z.extractall(dest)
}
do_unpack[postfuncs] += "secret_vm_wheel_extract"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

# As python_pep517's default: .pyc files for optimization level 0 are written beside the sources
# (compileall, which makes hash-checked .pyc files under SOURCE_DATE_EPOCH).
do_install() {
    nativepython3 -m installer --compile-bytecode=0 \
        --interpreter "${USRBINPATH}/env python3" \
        --destdir=${D} ${SECRET_VM_WHEEL_DIR}/${SECRET_VM_WHEEL}
}
