# The TDX kernel: poky's linux-yocto-dev with our configuration fragments.
#
# linux-yocto-dev follows a branch (v6.9/standard/base and yocto-kernel-cache master) and does
# not name commits. Ours come from the lock: conf/srcrev-lock.inc, rendered from
# yocto/secretvm.lock by `secretvm_yocto::conf::srcrev_inc`, sets
#   SRCREV_machine:pn-linux-yocto-dev = "<40 hex digits>"
#   SRCREV_meta:pn-linux-yocto-dev = "<40 hex digits>"
# This file sets no SRCREV. Without those lines the recipe is skipped (see below), so a build
# never follows the branch by accident.

FILESEXTRAPATHS:prepend := "${THISDIR}/files:"

SRC_URI += "file://secret-vm.scc \
            file://secret-vm-common.cfg \
            file://secret-vm-nat.cfg \
            file://secret-vm-tdx.cfg"

KERNEL_FEATURES:append:secret-vm-tdx = " secret-vm.scc cfg/sound.scc cfg/paravirt_kvm.scc"

COMPATIBLE_MACHINE:secret-vm-tdx = "secret-vm-tdx"
KMACHINE:secret-vm-tdx = "qemux86-64"

# yocto/secretvm.toml declares both as [[floating]]; `cargo xtask lock --update --resolve` pins
# them to their branches' heads. Set to "1" only for a build that deliberately follows the
# branch (never a release).
SECRET_VM_ALLOW_FLOATING_KERNEL ??= "0"

python __anonymous() {
    import re
    if d.getVar("SECRET_VM_ALLOW_FLOATING_KERNEL") == "1":
        return
    for name in ("SRCREV_machine", "SRCREV_meta"):
        value = d.getVar(name) or ""
        if not re.fullmatch("[0-9a-f]{40}", value):
            raise bb.parse.SkipRecipe(
                "%s is %r, not a commit: conf/srcrev-lock.inc must pin %s:pn-linux-yocto-dev "
                "(`cargo xtask lock --update --resolve` pins it; see meta-secret/README.md)" % (name, value, name))
}
